// Byte buffer: append/consume, limit, high-water mark, reserve/commit, compaction, shrink.
#include "common/base/buffer.h"

#include <doctest/doctest.h>

#include <cstring>
#include <string>
#include <utility>

using s2s::Buffer;

TEST_CASE("buffer: starts empty without memory") {
    Buffer b;
    CHECK(b.empty());
    CHECK(b.size() == 0);
    CHECK(b.capacity() == 0);
    CHECK(b.limit() == Buffer::kDefaultLimit);
    CHECK(b.high_water() == Buffer::kDefaultHighWater);
    CHECK(b.view().empty());
    CHECK_FALSE(b.above_high_water());
    CHECK(sizeof(Buffer) <= 48);  // idle links must cost little
}

TEST_CASE("buffer: append and consume from the front") {
    Buffer b(1024, 512);
    REQUIRE(b.append("hello "));
    REQUIRE(b.append(std::string_view("world")));
    REQUIRE(b.append("!!", 1));
    CHECK(b.view() == "hello world!");
    CHECK(b.size() == 12);
    CHECK(std::memcmp(b.data(), "hello", 5) == 0);
    b.consume(6);
    CHECK(b.view() == "world!");
    b.consume(100);  // clamped
    CHECK(b.empty());
    CHECK(b.append(""));  // empty append always succeeds
    CHECK(b.empty());
}

TEST_CASE("buffer: the limit is never exceeded and append is all or nothing") {
    Buffer b(10, 5);
    CHECK_FALSE(b.would_exceed_limit(10));
    CHECK(b.would_exceed_limit(11));
    REQUIRE(b.append("12345678"));
    CHECK(b.would_exceed_limit(3));
    CHECK_FALSE(b.would_exceed_limit(2));
    CHECK_FALSE(b.append("abc"));
    CHECK(b.view() == "12345678");  // nothing of the refused append
    REQUIRE(b.append("ab"));
    CHECK(b.size() == 10);
    CHECK(b.capacity() <= 10);  // growth stops at the limit
    CHECK_FALSE(b.append("x"));
    b.consume(1);
    CHECK(b.append("x"));
    CHECK(b.view() == "2345678abx");
}

TEST_CASE("buffer: high-water mark") {
    Buffer b(100, 10);
    REQUIRE(b.append(std::string(10, 'a')));
    CHECK_FALSE(b.above_high_water());  // at the mark is not above it
    REQUIRE(b.append("b"));
    CHECK(b.above_high_water());
    b.consume(5);
    CHECK_FALSE(b.above_high_water());
    Buffer clamped(8, 100);
    CHECK(clamped.high_water() == 8);
}

TEST_CASE("buffer: reserve_tail and commit for read callbacks") {
    Buffer b(100, 50);
    s2s::WritableSpan s = b.reserve_tail(30);
    REQUIRE(s.size == 30);
    std::memcpy(s.data, "abcdef", 6);
    b.commit(6);
    CHECK(b.view() == "abcdef");

    s = b.reserve_tail(1000);  // capped by the limit
    CHECK(s.size == 94);
    std::memset(s.data, 'z', s.size);
    b.commit(s.size);
    CHECK(b.size() == 100);
    CHECK(b.reserve_tail(1).empty());  // full: libuv then gets UV_ENOBUFS
    CHECK(b.reserve_tail(0).empty());

    b.consume(60);
    s = b.reserve_tail(60);
    CHECK(s.size == 60);
    b.commit(0);  // a read of 0 bytes changes nothing
    CHECK(b.size() == 40);
    b.commit(500);  // a caller bug is clamped to the limit, not a heap overflow
    CHECK(b.size() <= b.limit());
}

TEST_CASE("buffer: consume keeps an offset and compacts past half") {
    Buffer b(4096, 4096);
    REQUIRE(b.append(std::string(1000, 'a') + "TAIL"));
    const std::size_t cap = b.capacity();
    const char* base = b.data();
    b.consume(10);
    CHECK(b.data() == base + 10);  // no move: only the offset changed
    b.consume(cap / 2);            // now past half: live bytes move to the front
    CHECK(b.data() == base);
    CHECK(b.view().substr(b.size() - 4) == "TAIL");
    CHECK(b.size() == 1004 - 10 - cap / 2);
    b.consume(b.size());
    CHECK(b.empty());
    CHECK(b.capacity() == cap);  // memory kept until shrink()
}

TEST_CASE("buffer: append reuses consumed space before growing") {
    Buffer b(1024, 1024);
    REQUIRE(b.append(std::string(200, 'a')));
    const std::size_t cap = b.capacity();
    b.consume(100);  // under half: the offset stays
    REQUIRE(b.append(std::string(cap - 150, 'b')));  // fits only after compaction
    CHECK(b.capacity() == cap);
    CHECK(b.size() == 100 + cap - 150);
    CHECK(b.view().front() == 'a');
    CHECK(b.view().back() == 'b');
}

TEST_CASE("buffer: many small appends and consumes keep content in order") {
    Buffer b(1 << 16, 1 << 15);
    std::string model;
    unsigned seed = 1;
    for (int i = 0; i < 20000; ++i) {
        seed = seed * 1103515245u + 12345u;
        const std::size_t n = (seed >> 16) % 97;
        std::string chunk(n, static_cast<char>('a' + i % 26));
        if (b.append(chunk)) {
            model += chunk;
        } else {
            CHECK(b.would_exceed_limit(n));
        }
        const std::size_t c = (seed >> 8) % 101;
        b.consume(c);
        model.erase(0, std::min(c, model.size()));
        REQUIRE(b.size() == model.size());
    }
    CHECK(b.view() == model);
}

TEST_CASE("buffer: shrink releases memory when idle") {
    Buffer b(1 << 20, 1 << 19);
    REQUIRE(b.append(std::string(100000, 'x')));
    CHECK(b.capacity() >= 100000);
    b.consume(99990);
    b.shrink();
    CHECK(b.capacity() == Buffer::kMinCapacity);
    CHECK(b.view() == std::string(10, 'x'));
    b.consume(10);
    b.shrink();
    CHECK(b.capacity() == 0);
    CHECK(b.empty());
    REQUIRE(b.append("again"));  // usable after shrinking to nothing
    CHECK(b.view() == "again");
    b.clear();
    CHECK(b.empty());
    CHECK(b.capacity() > 0);
}

TEST_CASE("buffer: set_limits keeps held bytes") {
    Buffer b(100, 50);
    REQUIRE(b.append(std::string(80, 'a')));
    b.set_limits(40, 60);
    CHECK(b.high_water() == 40);
    CHECK(b.size() == 80);
    CHECK(b.would_exceed_limit(0));
    CHECK_FALSE(b.append("x"));
    CHECK(b.reserve_tail(10).empty());
    b.consume(50);
    CHECK(b.append("x"));
}

TEST_CASE("buffer: move transfers the bytes") {
    Buffer a(100, 50);
    REQUIRE(a.append("payload"));
    Buffer b(std::move(a));
    CHECK(b.view() == "payload");
    CHECK(b.limit() == 100);
    Buffer c;
    c = std::move(b);
    CHECK(c.view() == "payload");
    CHECK(c.high_water() == 50);
}
