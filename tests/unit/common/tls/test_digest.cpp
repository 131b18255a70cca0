// SHA-256 and hex through mbedTLS.
#include <doctest/doctest.h>

#include "common/tls/digest.h"

using namespace s2s;

TEST_CASE("digest: SHA-256 of the FIPS 180-2 test vectors, in lowercase hex") {
    Sha256 d = sha256("abc");
    CHECK(hex_lower(d.data(), d.size()) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    d = sha256("");
    CHECK(hex_lower(d.data(), d.size()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    const unsigned char bytes[] = {0x00, 0x0f, 0xa0, 0xff};
    CHECK(hex_lower(bytes, sizeof bytes) == "000fa0ff");
}
