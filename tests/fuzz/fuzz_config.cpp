// libFuzzer entry for the config loader: any bytes as a TOML file must give a result, never a
// crash, a hang or an exception; the key->line index must survive any text too.
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/config/config_lines.h"
#include "common/config/config_load.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string text(reinterpret_cast<const char*>(data), size);
    (void)s2s::config::index_lines(text);
    s2s::config::LoadResult r = s2s::config::load("fuzz.toml", text, {});
    for (auto& e : r.errors) (void)e.str();
    return 0;
}
