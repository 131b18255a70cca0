"""The s2s-proxy config both `make bench` (run.py) and `make soak` (soak.py) start it with.

A [[listen.s2s]] listener with STARTTLS whose CA is trusted for client certificates (SASL
EXTERNAL), local.server = the bench tool's sink, and a resolver pointed at a loopback port where
nothing answers, so that a bounce toward the generator's domains never leaves the machine.
"""
from kit import free_port

LOCAL = "local.test"      # the domain s2s-proxy fronts (the sink plays its server)


def write_proxy_config(path, *, written_by, sink_port, port, ca, cert, secret, local_extra="",
                       listener_extra="", tail=""):
    """Writes the config to `path`. `local_extra`, `listener_extra`: more lines for [local] and for
    the [[listen.s2s]] entry; `tail`: more tables at the end."""
    no_dns = free_port("127.0.0.1", udp=True)
    with open(path, "w") as f:
        f.write(f"""# written by {written_by}
[general]
hosts = ["{LOCAL}"]
loglevel = "warning"

[local]
server = "127.0.0.1:{sink_port}"
{local_extra}
[s2s]
use_starttls = "optional"
shared = "{secret}"
outgoing.dns.nameservers = ["127.0.0.1:{no_dns}"]
outgoing.dns.timeout = 1
outgoing.dns.retries = 1

[[listen.s2s]]
port = {port}
ip_address = "127.0.0.1"
tls.mode = "starttls"
tls.certfile = "{cert.chain}"
tls.keyfile = "{cert.key}"
tls.cacertfile = "{ca.cert}"
tls.verify_mode = "peer"
tls.disconnect_on_failure = false  # a link without a client certificate still comes in
max_connection_rate_per_host = "infinity"  # links are opened as fast as the tool can
max_tls_handshakes = "infinity"
{listener_extra}{tail}""")
    return path
