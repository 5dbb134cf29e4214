"""THE WORKBENCH: reviewers close pends. A projection of the output topics, server-rendered pages, and the review form.

Never imports Faust or the stream wing: it reads and writes topics with the Kafka clients.
"""
