#include "common/base/random.h"

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>

namespace s2s {
namespace {

// One generator for the process, seeded on first use. The proxy is single-threaded (one libuv loop).
struct Generator {
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    bool ready = false;
    Generator() {
        mbedtls_entropy_init(&entropy);
        mbedtls_ctr_drbg_init(&drbg);
        static const unsigned char personal[] = "s2s-proxy";
        ready = mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy, personal, sizeof personal - 1) == 0;
    }
    ~Generator() {
        mbedtls_ctr_drbg_free(&drbg);
        mbedtls_entropy_free(&entropy);
    }
};

}  // namespace

bool random_bytes(uint8_t* buf, size_t n) {
    static Generator gen;
    if (!gen.ready) return false;
    while (n > 0) {
        size_t chunk = n < MBEDTLS_CTR_DRBG_MAX_REQUEST ? n : MBEDTLS_CTR_DRBG_MAX_REQUEST;
        if (mbedtls_ctr_drbg_random(&gen.drbg, buf, chunk) != 0) return false;
        buf += chunk;
        n -= chunk;
    }
    return true;
}

std::string random_hex(size_t n) {
    static const char digits[] = "0123456789abcdef";
    std::string bytes(n, '\0'), out;
    if (!random_bytes(reinterpret_cast<uint8_t*>(bytes.data()), n)) return out;
    out.reserve(2 * n);
    for (unsigned char c : bytes) {
        out += digits[c >> 4];
        out += digits[c & 15];
    }
    return out;
}

}  // namespace s2s
