// The hardware limits, measured on one core with the project's own libraries and no proxy logic:
//
// stanza_limit():    per stanza, exactly the work a proxy cannot avoid — mbedTLS decrypt of
//                    300-byte stanzas (in records as the generator writes them), expat parse into
//                    a tree and re-serialize (common/xmpp/xml_stream + common/xml/xml), and batched writes
//                    to a loopback TCP socket (one write per 64 KB read, a second thread drains
//                    the other end). The ciphertext is made beforehand by an in-memory client.
// handshake_limit(): full TLS handshakes between in-memory client and server sessions made from
//                    the same contexts as the real run (server certificate, client certificate
//                    verified against the CA); only the server side's CPU time is counted.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "common/tls/tls_context.h"

namespace s2s::bench {

struct StanzaLimit {
    double stanzas_per_s = 0;     // per second of this thread's CPU time
    double decrypt_us = 0;        // per stanza, each step
    double xml_us = 0;
    double write_us = 0;
    std::size_t stanzas = 0;
    std::string error;
};

// `batch`: stanzas per TLS record, as the generator writes them.
StanzaLimit stanza_limit(std::shared_ptr<const tls::Context> server, std::shared_ptr<const tls::Context> client,
                         std::size_t stanzas, std::size_t batch);

struct HandshakeLimit {
    double handshakes_per_s = 0;  // per second of server CPU time
    double server_ms = 0;         // server CPU per handshake
    double client_ms = 0;         // client CPU per handshake (for the record)
    std::size_t handshakes = 0;
    std::string suite;            // what was negotiated
    std::string error;
};

// `resume`: every handshake after the first resumes the first one's session (its ticket).
HandshakeLimit handshake_limit(std::shared_ptr<const tls::Context> server, std::shared_ptr<const tls::Context> client,
                               double seconds, bool resume = false);

}  // namespace s2s::bench
