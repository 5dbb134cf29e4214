"""The workbench's pages, rendered on the server as plain HTML (no JavaScript).

Every value that came from an event is escaped. The pages show identifiers and codes, the
decisions and their reasons; the events carry no names, birth dates, addresses or free text.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime
from html import escape
from typing import Any

from worker.adjudication import CodeTable
from worker.review.projection import OpenPend

STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; color: #1b1f24; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0 1rem; }
th, td { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid #d8dee4; vertical-align: top; }
th { background: #f3f5f7; } .muted { color: #57606a; } .pill { padding: .05rem .45rem; border-radius: .6rem; }
.pended { background: #fff1c2; } .denied { background: #ffd8d3; } .approved { background: #d3f5dc; }
.notice { background: #ddf4ff; padding: .6rem .9rem; border-radius: .4rem; }
form.review { background: #f6f8fa; padding: 1rem; border-radius: .5rem; }
button { font: inherit; padding: .4rem 1rem; } form.inline { display: inline; }
.refused { background: #ffd8d3; padding: .6rem .9rem; border-radius: .4rem; }
"""


def page(title: str, body: str, reviewer: str | None, logout_csrf: str | None = None) -> str:
    """A whole page; a signed-in reviewer's shows who, and a sign-out button when sessions are local."""
    sign_out = (
        f'<form method=post action=/logout class=inline><input type=hidden name=csrf value="{escape(logout_csrf)}">'
        "<button type=submit id=sign-out>Sign out</button></form>"
        if reviewer and logout_csrf
        else ""
    )
    who = f'<p class="muted">Signed in as {escape(reviewer)} {sign_out}</p>' if reviewer else ""
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{escape(title)}</title><link rel=stylesheet href=/static/style.css></head>"
        f'<body><p><a href="/">Pend queues</a></p>{who}<h1>{escape(title)}</h1>{body}</body></html>'
    )


def age(since: datetime, now: datetime) -> str:
    """How long a pend has waited, in words."""
    seconds = max(int((now - since).total_seconds()), 0)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min"


def queues(pends: list[OpenPend], now: datetime) -> str:
    """The worklists: open pends by queue, oldest first, with their age."""
    if not pends:
        return '<p class="notice">No open pends.</p>'
    by_queue: dict[str, list[OpenPend]] = defaultdict(list)
    for pend in pends:
        by_queue[pend.queue].append(pend)
    out = []
    for queue in sorted(by_queue):
        rows = "".join(
            f'<tr><td><a href="/pends/{escape(p.pend_event_id)}">{escape(p.claim_id)}</a></td>'
            f"<td>{escape(p.member_id)}</td><td>{escape(p.decided_at.isoformat(timespec='seconds'))}</td>"
            f"<td>{age(p.decided_at, now)}</td>"
            f"<td>{'review sent by ' + escape(p.review_sent_by) if p.review_sent_by else ''}</td></tr>"
            for p in by_queue[queue]
        )
        out.append(
            f'<h2 id="queue-{escape(queue)}">{escape(queue)} ({len(by_queue[queue])})</h2>'
            "<table><tr><th>claim</th><th>member</th><th>pended at</th><th>waiting</th><th></th></tr>"
            f"{rows}</table>"
        )
    return "".join(out)


def claim(
    pend: Mapping[str, Any],
    state: str,
    sections: Mapping[str, str],
    codes: CodeTable,
    form: str | None,
    notice: str | None = None,
    *,
    refused: bool = False,
) -> str:
    """A pended claim: each line's decision, rule, policy section and evidence in plain words, and the form."""
    head = (
        f"<p>Member {escape(str(pend['member_id']))}, {escape(str(pend['claim_type']))} claim,"
        f" pended in <b>{escape(str(pend['queue']))}</b> at {escape(str(pend['decided_at']))}:"
        f" {escape(str(pend.get('reason') or ''))}</p>"
        f'<p class="muted">Pend event {escape(str(pend["event_id"]))};'
        f" policy {escape(str(pend['policy']['policy_id']))} {escape(', '.join(pend['policy']['versions']))},"
        f" reading revision {escape(str(pend['policy'].get('revision')))}."
        f" State: <b id=state>{escape(state)}</b>.</p>"
    )
    if notice:
        head += f'<p class="{"refused" if refused else "notice"}" id=notice>{escape(notice)}</p>'
    evidence: dict[int, list[str]] = defaultdict(list)
    for hit in pend["trace"]:
        evidence[int(hit["line_number"])].append(f"{hit['rule']}: {', '.join(hit['evidence']) or 'always'}")
    rows = []
    for line in pend["lines"]:
        billed = " ".join(
            str(part)
            for part in (line.get("procedure_code"), f"NDC {line['ndc']}" if line.get("ndc") else None)
            if part
        )
        cited = "".join(
            f"<li>{escape(name)}: {escape(sections.get(name, ''))}</li>" for name in line["policy_sections"]
        )
        meanings = "".join(
            f"<li>CARC {escape(c)}: {escape(codes.carc[c].text if c in codes.carc else '')}</li>" for c in line["carc"]
        ) + "".join(f"<li>RARC {escape(r)}: {escape(codes.rarc.get(r, ''))}</li>" for r in line["rarc"])
        rows.append(
            f"<tr><td>{line['line_number']}</td>"
            f"<td>{escape(billed or '(no code)')}<br><span class=muted>{escape(str(line.get('service_date')))},"
            f" route {escape(str(line.get('route') or '-'))}, units {escape(str(line.get('units')))},"
            f" charge {escape(str(line.get('charge_amount')))}</span></td>"
            f'<td><span class="pill {escape(line["outcome"])}">{escape(line["outcome"])}</span></td>'
            f"<td><code>{escape(line['rule'])}</code><br>{escape(line['explanation'])}<ul>{cited}{meanings}</ul>"
            f"<span class=muted>{escape('; '.join(evidence[int(line['line_number'])]))}</span></td></tr>"
        )
    table = (
        "<table><tr><th>line</th><th>billed</th><th>outcome</th><th>rule, policy and evidence</th></tr>"
        f"{''.join(rows)}</table>"
    )
    return head + table + (form or "")


def review_form(
    pend: Mapping[str, Any], codes: CodeTable, csrf: str, allowed: Mapping[int, frozenset[str]] | None = None
) -> str:
    """Decide each pended line, offering only the outcomes its queue allows, with CARC/RARC from the code table."""
    carcs = "".join(
        f'<option value="{escape(code)}">{escape(code)}: {escape(entry.text)}</option>'
        for code, entry in sorted(codes.carc.items(), key=lambda item: (len(item[0]), item[0]))
    )
    rarcs = '<option value="">(none)</option>' + "".join(
        f'<option value="{escape(code)}">{escape(code)}: {escape(text)}</option>'
        for code, text in sorted(codes.rarc.items())
    )
    fields = []
    for line in pend["lines"]:
        if line["outcome"] != "pended":
            continue
        n = int(line["line_number"])
        outcomes = allowed.get(n, frozenset()) if allowed is not None else frozenset({"approved", "denied"})
        choices = ""
        if "approved" in outcomes:
            choices += f'<label><input type=radio name="outcome-{n}" value=approved id="approve-{n}" required>'
            choices += " approve</label> "
        if "denied" in outcomes:
            choices += f'<label><input type=radio name="outcome-{n}" value=denied id="deny-{n}" required> deny</label>'
        if "approved" not in outcomes:
            choices += (
                f' <span class=muted id="deny-only-{n}">(this queue is closed by a corrected claim or a denial)</span>'
            )
        fields.append(
            f"<fieldset><legend>Line {n}</legend>{choices}<br>"
            f'<label>CARC (for a denial) <select name="carc-{n}" id="carc-{n}">{carcs}</select></label><br>'
            f'<label>RARC <select name="rarc-{n}" id="rarc-{n}">{rarcs}</select></label></fieldset>'
        )
    return (
        f'<h2>Review</h2><form class=review method=post action="/pends/{escape(str(pend["event_id"]))}/review">'
        f'<input type=hidden name=csrf value="{escape(csrf)}">{"".join(fields)}'
        "<p><button type=submit id=send>Send review</button></p></form>"
    )


def sign_in(csrf: str, message: str | None = None) -> str:
    """The token sign-in page (local use): the reviewer id and the token, with the form's CSRF token."""
    note = f'<p class="notice">{escape(message)}</p>' if message else ""
    return page(
        "Sign in",
        f'{note}<form method=post action=/login><input type=hidden name=csrf value="{escape(csrf)}">'
        "<label>Reviewer id <input name=reviewer id=reviewer autocomplete=username required></label> "
        "<label>Token <input type=password name=token id=token autocomplete=off required></label> "
        "<button type=submit id=sign-in>Sign in</button></form>",
        None,
    )
