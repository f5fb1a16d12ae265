"""Corpus files on which haproxy-py knowingly disagrees with HAProxy 2.6 (`haproxy -c`).

Each entry: file -> (reason, evidence). The reason says why haproxy-py's verdict differs; the
evidence is a piece of haproxy-py's first alert that shows the disagreement has that cause (so an
entry cannot silently come to mean something else). `tests/test_corpus.py` fails on any
disagreement missing here and on any entry here that no longer disagrees, so the list stays true.

All current entries are configurations HAProxy accepts but that use a feature haproxy-py does not
implement: refusing them with an explicit "haproxy-py does not implement" alert is intended, since
running without the feature would silently change what the configuration means.
"""

from __future__ import annotations

TLS = "uses 'ssl' on a bind line: TLS termination is not implemented (route TLS by SNI in mode tcp instead)"
TLS_SERVER = "uses 'ssl' on a server line: TLS to servers is not implemented"
COOKIE = "uses cookie persistence ('cookie' / 'dynamic-cookie-key'), which haproxy-py does not implement"
STICK = "uses stick tables, which haproxy-py does not implement"
FILTER = "uses 'filter' (SPOE, compression, cache, trace...), which haproxy-py does not implement"
CHECK = "uses a protocol-specific health check (mysql-check, ssl-hello-chk...), not implemented (use tcp-check)"
ORIGINALTO = "uses 'option originalto' (X-Original-To), which haproxy-py does not implement"
ACTION = "uses an http-request action haproxy-py does not implement (set-var, set-dst...)"
SERVER = "uses a server option haproxy-py does not implement (socks4)"
SOURCE = "uses 'source' (choosing the outgoing address / transparent proxying), not implemented"
H2 = "uses 'proto h2' on a server line: alternative multiplexers are not implemented"

KNOWN: dict[str, tuple[str, str]] = {
    '28youth__docker-mysql-cluster__haproxy.cfg': (CHECK, "'option mysql-check'"),
    'Aidaho12__haproxy_configs__haproxy.cfg': (STICK, "'stick-table' is a HAProxy keyword"),
    'Aidaho12__haproxy_configs__haproxy.cfg.rpmnew': (COOKIE, "'cookie' is a HAProxy keyword"),
    'CERNDocumentServer__cds-videos__docker_haproxy_haproxy.cfg': (TLS, "'bind' : 'ssl'"),
    'Celtech__graylog-observability__config_haproxy_haproxy.cfg': (COOKIE, "'dynamic-cookie-key' is a HAProxy keyword"),
    'ClaxtonOps__haproxy-config__dockerfiles_haproxy_haproxy-dev.cfg': (COOKIE, "'cookie' is a HAProxy keyword"),
    'HariSekhon__HAProxy-configs__mysql.cfg': (CHECK, "'option mysql-check'"),
    'KenadAraujo__haproxy-keycloak__config_haproxy.cfg': (TLS, "'bind' : 'ssl'"),
    'Manssizz__scriptvps__config_haproxy.cfg': (TLS, "'bind' : 'ssl'"),
    'Nespartious__Cerberus__config_haproxy.cfg': (STICK, "'stick-table' is a HAProxy keyword"),
    'Podcakero__HAProxy-ACME-PowerDNS__haproxy.cfg': (TLS, "'bind' : 'ssl'"),
    'Supraneth__pfsense-config__haproxy.conf': (COOKIE, "'cookie' is a HAProxy keyword"),
    'UZziell__v2ray-haproxy-docker__haproxy-bridge-server_haproxy-template.cfg': (TLS, "'bind' : 'ssl'"),
    'VeselaHouba__docker-smtp-haproxy__docker_haproxy.cfg': (TLS, "'bind' : 'ssl'"),
    'aasmith__haproxy-examples__h2_haproxy.cfg': (TLS, "'bind' : 'ssl'"),
    'aasmith__haproxy-examples__server-template_haproxy.cfg': (FILTER, "'filter' is a HAProxy keyword"),
    'aerogus__streaming-cluster__lb_haproxy.cfg': (COOKIE, "'cookie' is a HAProxy keyword"),
    'alecpm__plone-org-haproxy__haproxy.conf': (COOKIE, "'cookie' is a HAProxy keyword"),
    'auduny__varnish-ssl-benchmark__etc_haproxy_haproxy.cfg': (TLS, "'bind' : 'ssl'"),
    'bigeasy__puppy__etc_haproxy_haproxy.cfg': (ORIGINALTO, "'option originalto'"),
    'davidcoutadeur__haproxy-config__haproxy.cfg': (CHECK, "'option ssl-hello-chk'"),
    'deflax__television__haproxy_haproxy.cfg': (TLS, "'bind' : 'ssl'"),
    'dh3wr__haproxy_osm_metatile__haproxy.conf': (ACTION, "'http-request set-var' is a HAProxy action"),
    'digitalocean__mtls-tech-talk__haproxy.conf': (TLS, "'bind' : 'ssl'"),
    'frobware__haproxy-hacks__BZ2044682_haproxy.config': (COOKIE, "'cookie' is a HAProxy keyword"),
    'goodeggs__cedar__conf_haproxy.cfg': (TLS, "'bind' : 'ssl'"),
    'haproxy__haproxy__examples_basic-config-edge.cfg': (TLS, "'bind' : 'ssl'"),
    'haproxy__haproxy__examples_option-http_proxy.cfg': (ACTION, "'http-request set-dst' is a HAProxy action"),
    'haproxy__haproxy__examples_socks4.cfg': (SERVER, "'socks4' is a HAProxy server option"),
    'haproxy__haproxy__examples_transparent_proxy.cfg': (SOURCE, "'source' is a HAProxy keyword"),
    'haproxy__haproxy__tests_conf_test-srv-verify.cfg': (TLS_SERVER, "'ssl' is a HAProxy server option"),
    'haproxy__haproxy__tests_conf_test-str2sa.cfg': (SOURCE, "'source' is a HAProxy server option"),
    'haproxytech__dataplaneapi__e2e_tests_storage_ssl_crt_lists_data_haproxy.cfg': (TLS, "'bind' : 'ssl'"),
    'haproxytech__kubernetes-ingress__documentation_tcp-cr-full-example_haproxy.cfg': (FILTER, "'filter' is a HAProxy keyword"),
    'hector-vido__vagrant-mysql__files_haproxy.cfg': (CHECK, "'option mysql-check'"),
    'if-fulcrum__fulcrum__etc_haproxy_local-dev.cfg': (TLS, "'bind' : 'ssl'"),
    'james-stevens__handshake-volume-resolver__etc_haproxy.cfg': (H2, "'proto' is a HAProxy server option"),
    'jbsky__vyos-deploy__etc_haproxy_haproxy.cfg': (TLS, "'bind' : 'ssl'"),
    'mwohlert__haproxy-acmesh-alpn__conf_haproxy.cfg': (TLS, "'bind' : 'ssl'"),
    'neighbourhoodie__couchdb-minihosting__data_etc_haproxy_haproxy.cfg': (TLS, "'bind' : 'ssl'"),
}
