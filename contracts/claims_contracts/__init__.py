"""Wire contracts of the claims adjudication worker.

Re-exports the current version (v1). Import a version explicitly
(`claims_contracts.v1`) when you must not move with the current one.
"""

from claims_contracts.v1 import *  # noqa: F403 - the current version is this package's surface
from claims_contracts.v1 import __all__ as _v1_all

__version__ = "1.6.0"
__all__ = [*_v1_all, "__version__"]
