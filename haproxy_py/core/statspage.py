"""The HTML stats page (`stats enable` / `stats uri`) with HAProxy 2.6's layout and colours.

Pure: `render_html(snapshot, proxy, ...)` returns the page as text. The layout follows HAProxy's
(general process information, legend, display options, then one table per proxy with the
Queue / Session rate / Sessions / Bytes / Denied / Errors / Warnings / Server column groups), and
rows use HAProxy's CSS classes so the colours mean the same: `active_up` green, `active_down` red
(#ff9090), `maintain` brown, `active_draining` blue, `backup_*` for backup servers,
`active_no_check` grey.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from haproxy_py import version
from haproxy_py.core.stats import TYPE_BACKEND, TYPE_FRONTEND, Row, Snapshot

if TYPE_CHECKING:
    from haproxy_py.config.model import Proxy

CSS = """\
body { font-family: arial, helvetica, sans-serif; font-size: 12px; font-weight: normal; color: black; background: white;}
th,td { font-size: 10px;}
h1 { font-size: x-large; margin-bottom: 0.5em;}
h2 { font-family: helvetica, arial; font-size: x-large; font-weight: bold; font-style: italic; color: #6020a0; margin-top: 0em; margin-bottom: 0em;}
h3 { font-family: helvetica, arial; font-size: 16px; font-weight: bold; color: #b00040; background: #e8e8d0; margin-top: 0em; margin-bottom: 0em;}
li { margin-top: 0.25em; margin-right: 2em;}
.hr {margin-top: 0.25em; border-color: black; border-bottom-style: solid;}
.titre	{background: #20D0D0;color: #000000; font-weight: bold; text-align: center;}
.total	{background: #20D0D0;color: #ffff80;}
.frontend	{background: #e8e8d0;}
.socket	{background: #d0d0d0;}
.backend	{background: #e8e8d0;}
.active_down		{background: #ff9090;}
.active_going_up		{background: #ffd020;}
.active_going_down	{background: #ffffa0;}
.active_up		{background: #c0ffc0;}
.active_nolb		{background: #20a0ff;}
.active_draining		{background: #20a0FF;}
.active_no_check		{background: #e0e0e0;}
.backup_down		{background: #ff9090;}
.backup_going_up		{background: #ff80ff;}
.backup_going_down	{background: #c060ff;}
.backup_up		{background: #b0d0ff;}
.backup_nolb		{background: #90b0e0;}
.backup_draining		{background: #cc9900;}
.backup_no_check		{background: #e0e0e0;}
.maintain	{background: #c07820;}
.rls      {letter-spacing: 0.2em; margin-right: 1px;}

a.px:link {color: #ffff40; text-decoration: none;}a.px:visited {color: #ffff40; text-decoration: none;}a.px:hover {color: #ffffff; text-decoration: none;}a.lfsb:link {color: #000000; text-decoration: none;}a.lfsb:visited {color: #000000; text-decoration: none;}a.lfsb:hover {color: #505050; text-decoration: none;}
table.tbl { border-collapse: collapse; border-style: none;}
table.tbl td { text-align: right; border-width: 1px 1px 1px 1px; border-style: solid solid solid solid; padding: 2px 3px; border-color: gray; white-space: nowrap;}
table.tbl td.ac { text-align: center;}
table.tbl th { border-width: 1px; border-style: solid solid solid solid; border-color: gray;}
table.tbl th.pxname { background: #b00040; color: #ffff40; font-weight: bold; border-style: solid solid none solid; padding: 2px 3px; white-space: nowrap;}
table.tbl th.empty { border-style: none; empty-cells: hide; background: white;}
table.tbl th.desc { background: white; border-style: solid solid none solid; text-align: left; padding: 2px 3px;}

table.lgd { border-collapse: collapse; border-width: 1px; border-style: none none none solid; border-color: black;}
table.lgd td { border-width: 1px; border-style: solid solid solid solid; border-color: gray; padding: 2px;}
table.lgd td.noborder { border-style: none; padding: 2px; white-space: nowrap;}
table.det { border-collapse: collapse; border-style: none; }
table.det th { text-align: left; border-width: 0px; padding: 0px 1px 0px 0px; font-style:normal;font-size:11px;font-weight:bold;font-family: sans-serif;}
table.det td { text-align: right; border-width: 0px; padding: 0px 0px 0px 4px; white-space: nowrap; font-style:normal;font-size:11px;font-weight:normal;}
u {text-decoration:none; border-bottom: 1px dotted black;}
div.tips {
 display:block;
 visibility:hidden;
 z-index:2147483647;
 position:absolute;
 padding:2px 4px 3px;
 background:#f0f060; color:#000000;
 border:1px solid #7040c0;
 white-space:nowrap;
 font-style:normal;font-size:11px;font-weight:normal;
 -moz-border-radius:3px;-webkit-border-radius:3px;border-radius:3px;
 -moz-box-shadow:gray 2px 2px 3px;-webkit-box-shadow:gray 2px 2px 3px;box-shadow:gray 2px 2px 3px;
}
u:hover div.tips {visibility:visible;}
@media (prefers-color-scheme: dark) {
 body { font-family: arial, helvetica, sans-serif; font-size: 12px; font-weight: normal; color: #e8e6e3; background: #131516;}
 h1 { color: #a265e0!important; }
 h2 { color: #a265e0; }
 h3 { color: #ff5190; background-color: #3e3e1f; }
 a { color: #3391ff; }
 input { background-color: #2f3437; }
 .hr { border-color: #8c8273; }
 .titre { background-color: #1aa6a6; color: #e8e6e3; }
 .frontend {background: #2f3437;}
 .socket	{background: #2a2d2f;}
 .backend {background: #2f3437;}
 .active_down {background: #760000;}
 .active_going_up {background: #b99200;}
 .active_going_down {background: #6c6c00;}
 .active_up {background: #165900;}
 .active_nolb {background: #006ab9;}
 .active_draining {background: #006ab9;}
 .active_no_check {background: #2a2d2f;}
 .backup_down {background: #760000;}
 .backup_going_up {background: #7f007f;}
 .backup_going_down {background: #580092;}
 .backup_up {background: #2e3234;}
 .backup_nolb {background: #1e3c6a;}
 .backup_draining {background: #a37a00;}
 .backup_no_check {background: #2a2d2f;}
 .maintain {background: #9a601a;}
 a.px:link {color: #d8d83b; text-decoration: none;}
 a.px:visited {color: #d8d83b; text-decoration: none;}
 a.px:hover {color: #ffffff; text-decoration: none;}
 a.lfsb:link {color: #e8e6e3; text-decoration: none;}
 a.lfsb:visited {color: #e8e6e3; text-decoration: none;}
 a.lfsb:hover {color: #b5afa6; text-decoration: none;}
 table.tbl th.empty { background-color: #181a1b; }
 table.tbl th.desc { background: #181a1b; }
 table.tbl th.pxname { background-color: #8d0033; color: #ffff46; }
 table.tbl th { border-color: #808080; }
 table.tbl td { border-color: #808080; }
 u {text-decoration:none; border-bottom: 1px dotted #e8e6e3;}
 div.tips {
  background:#8e8e0d;
  color:#e8e6e3;
  border-color: #4e2c86;
  -moz-box-shadow: #60686c 2px 2px 3px;
  -webkit-box-shadow: #60686c 2px 2px 3px;
  box-shadow: #60686c 2px 2px 3px;
 }
}
"""

# row class of a server by its CSV status word (stats.c srv_hlt_st -> class suffix)
_STATE_CLASS = {
    "DOWN": "down", "UP": "up", "NOLB": "nolb", "DRAIN": "draining", "no check": "no_check",
}

_STATUS_MESSAGES = {
    "DONE": ("active_up", "Action processed successfully."),
    "NONE": ("active_going_down", "Nothing has changed."),
    "PART": ("active_going_down", "Action partially processed.<br>Some server names are probably unknown or "
                                  "ambiguous (duplicated names in the backend)."),
    "ERRP": ("active_down", "Action not processed because of invalid parameters.<ul><li>The action is maybe "
                            "unknown.</li><li>Invalid key parameter (empty or too long).</li><li>The backend name is "
                            "probably unknown or ambiguous (duplicated names).</li><li>Some server names are probably "
                            "unknown or ambiguous (duplicated names in the backend).</li></ul>"),
    "EXCD": ("active_down", "<b>Action not processed : the buffer couldn't store all the data.<br>You should retry "
                            "with less servers at a time.</b>"),
    "DENY": ("active_down", "<b>Action denied.</b>"),
    "IVAL": ("active_down", "<b>Invalid requests (unsupported method or chunked encoded request).</b>"),
}


def human_time(seconds: int) -> str:
    """HAProxy's human_time(): 56s, 1m24s, 2h3m, 1d4h."""
    t = max(0, int(seconds))
    if t < 60:
        return f"{t}s"
    if t < 3600:
        return f"{t // 60}m{t % 60}s"
    if t < 86400:
        return f"{t // 3600}h{t % 3600 // 60}m"
    return f"{t // 86400}d{t % 86400 // 3600}h"


def num(v: Any) -> str:
    """HAProxy's U2H: thousands made visible by spacing the digit before each group of three."""
    if v is None:
        return ""
    s = str(v)
    if not s.isdigit() or len(s) < 4:
        return s
    out = []
    n = len(s)
    for i, ch in enumerate(s):
        pos = n - 1 - i
        out.append(f'<span class="rls">{ch}</span>' if pos and pos % 3 == 0 else ch)
    return "".join(out)


def _lim(v: Any) -> str:
    return "-" if v in (None, 0, "") else num(v)


def _row_class(row: Row) -> str:
    kind = row["type"]
    if kind == TYPE_FRONTEND:
        return "frontend"
    if kind == TYPE_BACKEND:
        return "backend"
    status = str(row["status"] or "")
    if status.startswith("MAINT"):
        return "maintain"
    word = status.split(" ")[0] if not status.startswith("no check") else "no check"
    if word == "UP" and " " in status:
        suffix = "going_down"
    elif word == "DOWN" and " " in status:
        suffix = "going_up"
    elif word == "NOLB" and " " in status:
        suffix = "going_down"
    else:
        suffix = _STATE_CLASS.get(word, "down")
    return f"{'backup' if row['_backup'] else 'active'}_{suffix}"


def _header(name: str, proxy_admin: bool) -> str:
    first = (f'<th rowspan=2 width=1><input type="checkbox" onclick="for(c in document.getElementsByClassName('
             f"'{name}-checkbox')) document.getElementsByClassName('{name}-checkbox').item(c).checked = this.checked"
             '"></th>') if proxy_admin else "<th rowspan=2></th>"
    return (
        '<table class="tbl" width="100%">\n'
        f'<tr class="titre"><th class="pxname" width="10%"><a name="{name}"></a><a class=px href="#{name}">{name}</a>'
        '</th><th class="empty" width="90%"></th></tr>\n</table>\n<table class="tbl" width="100%">\n'
        f'<tr class="titre">{first}<th rowspan=2></th><th colspan=3>Queue</th><th colspan=3>Session rate</th>'
        '<th colspan=6>Sessions</th><th colspan=2>Bytes</th><th colspan=2>Denied</th><th colspan=3>Errors</th>'
        '<th colspan=2>Warnings</th><th colspan=9>Server</th></tr>\n<tr class="titre">'
        + "".join(f"<th>{h}</th>" for h in ("Cur", "Max", "Limit", "Cur", "Max", "Limit", "Cur", "Max", "Limit",
                                            "Total", "LbTot", "Last", "In", "Out", "Req", "Resp", "Req", "Conn",
                                            "Resp", "Retr", "Redis", "Status", "LastChk", "Wght", "Act", "Bck",
                                            "Chk", "Dwn", "Dwntme", "Thrtle"))
        + "\n</tr>"
    )


def _frontend(row: Row) -> str:
    px = html.escape(row["pxname"])
    http = row["_http"]
    tips = (f"<tr><th>Cum. connections:</th><td>{num(row['conn_tot'])}</td></tr>"
            f"<tr><th>Cum. sessions:</th><td>{num(row['stot'])}</td></tr>")
    if http:
        tips += f"<tr><th>Cum. HTTP requests:</th><td>{num(row['req_tot'])}</td></tr>"
        for label, f in (("1xx", "hrsp_1xx"), ("2xx", "hrsp_2xx"), ("3xx", "hrsp_3xx"), ("4xx", "hrsp_4xx"),
                         ("5xx", "hrsp_5xx")):
            tips += f"<tr><th>- HTTP {label} responses:</th><td>{num(row[f])}</td></tr>"
        tips += (f"<tr><th>- other responses:</th><td>{num(row['hrsp_other'])}</td></tr>"
                 f"<tr><th>Intercepted requests:</th><td>{num(row['intercepted'])}</td></tr>")
    return (
        f'<tr class="frontend"><td></td><td class=ac><a name="{px}/Frontend"></a><a class=lfsb href="#{px}/Frontend">'
        f"Frontend</a></td><td colspan=3></td><td>{num(row['rate'])}</td><td>{num(row['rate_max'])}</td>"
        f"<td>{_lim(row['rate_lim'])}</td><td>{num(row['scur'])}</td><td>{num(row['smax'])}</td>"
        f"<td>{num(row['slim'])}</td><td><u>{num(row['stot'])}<div class=tips><table class=det>{tips}</table></div>"
        f"</u></td><td></td><td></td><td>{num(row['bin'])}</td><td>{num(row['bout'])}</td><td>{num(row['dreq'])}</td>"
        f"<td>{num(row['dresp'])}</td><td>{num(row['ereq'])}</td><td></td><td></td><td></td><td></td>"
        f"<td class=ac>{html.escape(str(row['status']))}</td><td class=ac colspan=8></td></tr>"
    )


def _lastchk(row: Row) -> str:
    st = row["check_status"]
    if not st:
        return "<td></td>"
    text = f" {html.escape(str(st))}"
    if row["check_code"] is not None:
        text += f"/{row['check_code']}"
    if row["check_duration"] is not None:
        text += f" in {row['check_duration']}ms"
    tip = html.escape(str(row["check_desc"] or ""))
    if row["last_chk"]:
        tip += f": {html.escape(str(row['last_chk']))}"
    return f"<td class=ac><u>{text}<div class=tips>{tip}</div></u></td>"


def _server(row: Row, admin: bool) -> str:
    px, sv = html.escape(row["pxname"]), html.escape(row["svname"])
    status = str(row["status"])
    if status == "no check":
        status_cell = "<i>no check</i>"
    else:
        status_cell = f"{human_time(row['lastchg'])} {html.escape(status)}"
    checked = row["chkfail"] is not None
    check_cells = (f"<td><u>{num(row['chkfail'])}<div class=tips>Failed Health Checks</div></u></td>"
                   f"<td>{num(row['chkdown'])}</td><td>{human_time(row['downtime'] or 0)}</td>"
                   if checked else "<td colspan=3></td>")
    box = (f"<td><input class='{px}-checkbox' type=\"checkbox\" name=\"s\" value=\"{sv}\"></td>" if admin
           else "<td></td>")
    last = "?" if row["lastsess"] is None or row["lastsess"] < 0 else human_time(row["lastsess"])
    return (
        f'<tr class="{_row_class(row)}">{box}<td class=ac><a name="{px}/{sv}"></a><a class=lfsb href="#{px}/{sv}">{sv}'
        f"</a></td><td>{num(row['qcur'])}</td><td>{num(row['qmax'])}</td><td>{_lim(row['qlimit'])}</td>"
        f"<td>{num(row['rate'])}</td><td>{num(row['rate_max'])}</td><td></td><td>{num(row['scur'])}</td>"
        f"<td>{num(row['smax'])}</td><td>{_lim(row['slim'])}</td><td>{num(row['stot'])}</td>"
        f"<td>{num(row['lbtot'])}</td><td>{last}</td><td>{num(row['bin'])}</td><td>{num(row['bout'])}</td><td></td>"
        f"<td>{num(row['dresp'])}</td><td></td><td>{num(row['econ'])}</td><td><u>{num(row['eresp'])}<div class=tips>"
        f"Connection resets during transfers: {row['cli_abrt']} client, {row['srv_abrt']} server</div></u></td>"
        f"<td>{num(row['wretr'])}</td><td>{num(row['wredis'])}</td><td class=ac>{status_cell}</td>{_lastchk(row)}"
        f"<td class=ac>{row['weight']}/{row['uweight']}</td><td class=ac>{'Y' if row['act'] else '-'}</td>"
        f"<td class=ac>{'Y' if row['bck'] else '-'}</td>{check_cells}<td class=ac>-</td></tr>\n"
    )


def _backend(row: Row) -> str:
    px = html.escape(row["pxname"])
    status = str(row["status"])
    shown = f'<font color="red"><b>{status}</b></font>' if status.startswith("DOWN") else status
    last = "?" if row["lastsess"] is None or row["lastsess"] < 0 else human_time(row["lastsess"])
    return (
        f'<tr class="backend"><td></td><td class=ac><a name="{px}/Backend"></a><a class=lfsb href="#{px}/Backend">'
        f"Backend</a></td><td>{num(row['qcur'])}</td><td>{num(row['qmax'])}</td><td></td><td>{num(row['rate'])}</td>"
        f"<td>{num(row['rate_max'])}</td><td></td><td>{num(row['scur'])}</td><td>{num(row['smax'])}</td>"
        f"<td>{num(row['slim'])}</td><td>{num(row['stot'])}</td><td>{num(row['lbtot'])}</td><td>{last}</td>"
        f"<td>{num(row['bin'])}</td><td>{num(row['bout'])}</td><td>{num(row['dreq'])}</td><td>{num(row['dresp'])}</td>"
        f"<td></td><td>{num(row['econ'])}</td><td><u>{num(row['eresp'])}<div class=tips>Connection resets during "
        f"transfers: {row['cli_abrt']} client, {row['srv_abrt']} server</div></u></td><td>{num(row['wretr'])}</td>"
        f"<td>{num(row['wredis'])}</td><td class=ac>{human_time(row['lastchg'])} {shown}</td><td class=ac>&nbsp;</td>"
        f"<td class=ac>{row['weight']}/{row['uweight']}</td><td class=ac>{row['act']}</td><td class=ac>{row['bck']}</td>"
        f"<td class=ac>&nbsp;</td><td>{num(row['chkdown'])}</td><td>{human_time(row['downtime'] or 0)}</td><td></td>"
        "</tr>"
    )


_ACTIONS = ('<option value=""></option><option value="ready">Set state to READY</option><option value="drain">'
            'Set state to DRAIN</option><option value="maint">Set state to MAINT</option><option value="dhlth">'
            'Health: disable checks</option><option value="ehlth">Health: enable checks</option><option '
            'value="hrunn">Health: force UP</option><option value="hnolb">Health: force NOLB</option><option '
            'value="hdown">Health: force DOWN</option><option value="shutdown">Kill Sessions</option>')


def render_html(snap: Snapshot, proxy: Proxy, *, uri_prefix: str, options: set[str] | frozenset[str] = frozenset(),
                scope: str | None = None, admin: bool = False, status_code: str | None = None,
                pid: int = 0) -> str:
    """The whole page. `options` are the `;` suffixes of the request (up, no-maint, norefresh...),
    `scope` the scope form value, `admin` whether `stats admin` allows actions for this request."""
    st = proxy.stats
    info = snap.info
    ver = "" if st.hide_version else f" version {version.FULL_VERSION}, released {version.RELEASE_DATE}"
    out = [
        '<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01 Transitional//EN"\n"http://www.w3.org/TR/html4/loose.dtd">\n'
        "<html><head><title>Statistics Report for HAProxy</title>\n<link rel=\"icon\" href=\"data:,\">\n"
        '<meta http-equiv="content-type" content="text/html; charset=iso-8859-1">\n'
        f'<style type="text/css"><!--\n{CSS}-->\n</style></head>\n'
        f'<body><h1><a href="http://www.haproxy.org/" style="text-decoration: none;">HAProxy{ver}</a></h1>\n'
        f"<h2>Statistics Report for pid {pid}</h2>\n<hr width=\"100%\" class=\"hr\">\n"
        "<h3>&gt; General process information</h3>\n"
        '<table border=0><tr><td align="left" nowrap width="1%">\n'
        f"<p><b>pid = </b> {pid} (process #1, nbproc = 1, nbthread = {info['Nbthread']})<br>\n"
        f"<b>uptime = </b> {info['Uptime']}<br>\n"
        f"<b>system limits:</b> memmax = unlimited; ulimit-n = {info['Ulimit-n']}<br>\n"
        f"<b>maxsock = </b> {info['Maxsock']}; <b>maxconn = </b> {info['Maxconn']}; <b>maxpipes = </b> 0<br>\n"
        f"current conns = {info['CurrConns']}; current pipes = 0/0; conn rate = {info['ConnRate']}/sec; "
        "bit rate = 0.000 kbps<br>\n"
        f"Running tasks: 0/0; idle = {info['Idle_pct']} %<br>\n"
        '</td><td align="center" nowrap>\n'
        '<table class="lgd"><tr>\n'
        '<td class="active_up">&nbsp;</td><td class="noborder">active UP </td><td class="backup_up">&nbsp;</td>'
        '<td class="noborder">backup UP </td></tr><tr>\n'
        '<td class="active_going_down"></td><td class="noborder">active UP, going down </td>'
        '<td class="backup_going_down"></td><td class="noborder">backup UP, going down </td></tr><tr>\n'
        '<td class="active_going_up"></td><td class="noborder">active DOWN, going up </td>'
        '<td class="backup_going_up"></td><td class="noborder">backup DOWN, going up </td></tr><tr>\n'
        '<td class="active_down"></td><td class="noborder">active or backup DOWN &nbsp;</td>'
        '<td class="active_no_check"></td><td class="noborder">not checked </td></tr><tr>\n'
        '<td class="maintain"></td><td class="noborder" colspan="3">active or backup DOWN for maintenance (MAINT) '
        "&nbsp;</td></tr><tr>\n"
        '<td class="active_draining"></td><td class="noborder" colspan="3">active or backup SOFT STOPPED for '
        "maintenance &nbsp;</td></tr></table>\n"
        'Note: "NOLB"/"DRAIN" = UP with load-balancing disabled.</td><td align="left" valign="top" nowrap '
        'width="1%"><b>Display option:</b><ul style="margin-top: 0.25em;">'
        f'<li><form method="GET">Scope : <input value="{html.escape(scope or "")}" name="scope" size="8" '
        'maxlength="20" tabindex="1"/></form>\n'
        + (f'<li><a href="{uri_prefix}">Show all servers</a><br>\n' if "up" in options
           else f'<li><a href="{uri_prefix};up">Hide \'DOWN\' servers</a><br>\n')
        + (f'<li><a href="{uri_prefix};norefresh">Disable refresh</a><br>\n' if st.refresh else "")
        + f'<li><a href="{uri_prefix}">Refresh now</a><br>\n'
        f'<li><a href="{uri_prefix};csv;norefresh">CSV export</a><br>\n'
        f'<li><a href="{uri_prefix};json;norefresh">JSON export</a> (<a href="{uri_prefix};json-schema">schema</a>)'
        "<br>\n</ul></td><td align=\"left\" valign=\"top\" nowrap width=\"1%\"><b>External resources:</b>"
        '<ul style="margin-top: 0.25em;">\n<li><a href="http://www.haproxy.org/">Primary site</a><br>\n'
        '<li><a href="http://www.haproxy.org/#down">Updates (v2.6)</a><br>\n'
        '<li><a href="http://www.haproxy.org/#docs">Online manual</a><br>\n</ul></td></tr></table>\n'
    ]
    if status_code:
        cls, msg = _STATUS_MESSAGES.get(status_code, ("active_no_check", "Unexpected result."))
        out.append(f'<p><div class={cls}><a class=lfsb href="{uri_prefix}" title="Remove this message">[X]</a> '
                   f"{msg}</div>\n")
    out.append("<p>\n")
    for px in snap.proxies:
        if st.scopes and px.name not in st.scopes:
            continue
        if scope and scope not in px.name:
            continue
        name = html.escape(px.name)
        has_servers = px.backend is not None
        if has_servers and admin:
            out.append('<form method="post">')
        out.append(_header(name, admin and has_servers))
        if px.frontend is not None:
            out.append(_frontend(px.frontend))
        for s in px.servers:
            if "up" in options and s["_state"] in ("DOWN", "MAINT"):
                continue
            if "no-maint" in options and s["_state"] == "MAINT":
                continue
            out.append(_server(s, admin))
        if px.backend is not None:
            out.append(_backend(px.backend))
        out.append("</table>")
        if has_servers and admin:
            out.append(f"Choose the action to perform on the checked servers : <select name=action>{_ACTIONS}"
                       f'</select><input type="hidden" name="b" value="#{px.id}">&nbsp;<input type="submit" '
                       'value="Apply"></form>')
        out.append("<p>\n")
    out.append("</body></html>\n")
    return "".join(out)
