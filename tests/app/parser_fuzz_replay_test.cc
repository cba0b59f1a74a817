// Replays the libFuzzer target (apps/ctxfwd/packet_parser_fuzz.cc, which aborts when the
// parser breaks a promise) in every build variant: over the committed corpus, over
// fixed-seed mutations of it, and over a fresh ctxgen capture. The real fuzzer runs in
// the asan variant as the `packet_parser_fuzz` test.
#include <dirent.h>
#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "generator.h"
#include "packet_parser.h"
#include "rng.h"
#include "support/test_scale.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

std::vector<std::vector<std::uint8_t>> load_corpus() {
  std::vector<std::vector<std::uint8_t>> corpus;
  const char* dir = std::getenv("CTXFWD_FUZZ_CORPUS");
  if (dir == nullptr) {
    ADD_FAILURE() << "CTXFWD_FUZZ_CORPUS is not set (meson test sets it)";
    return corpus;
  }
  DIR* d = opendir(dir);
  if (d == nullptr) {
    ADD_FAILURE() << "cannot open " << dir;
    return corpus;
  }
  std::vector<std::string> names;
  while (const dirent* e = readdir(d)) {
    const std::string n = e->d_name;
    if (n.size() > 4 && n.substr(n.size() - 4) == ".bin") names.push_back(n);
  }
  closedir(d);
  std::sort(names.begin(), names.end());  // a fixed order: the replay is reproducible
  for (const std::string& n : names) {
    std::ifstream in(std::string(dir) + "/" + n, std::ios::binary);
    corpus.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  return corpus;
}

// Tallies the parser's verdicts, so that the test fails when the corpus stops reaching
// a path (a corpus of only malformed frames would test little).
struct Tally {
  std::array<std::size_t, 3> status{};
  std::array<std::size_t, ctxfwd::kMalformedCount> reasons{};
  void add(const std::vector<std::uint8_t>& f) {
    LLVMFuzzerTestOneInput(f.data(), f.size());
    const auto r = ctxfwd::parse(reinterpret_cast<const std::byte*>(f.data()), f.size());
    ++status[static_cast<std::size_t>(r.status)];
    ++reasons[static_cast<std::size_t>(r.reason)];
  }
};

TEST(ParserFuzzReplay, CorpusReachesEveryVerdictAndReason) {
  const auto corpus = load_corpus();
  ASSERT_GE(corpus.size(), 30u);
  Tally t;
  for (const auto& f : corpus)
    t.add(f);
  for (std::size_t s = 0; s < 3; ++s)
    EXPECT_GT(t.status[s], 0u) << "status " << s;
  for (std::size_t m = 1; m < ctxfwd::kMalformedCount; ++m) {
    EXPECT_GT(t.reasons[m], 0u) << ctxfwd::to_string(static_cast<ctxfwd::Malformed>(m));
  }
}

// Mutations in the spirit of libFuzzer's, from a fixed seed (CTXALLOC_TEST_SEED to vary).
void mutate(std::vector<std::uint8_t>& f, ctxgen::Rng& rng) {
  static constexpr std::uint8_t kInteresting[] = {0x00, 0xFF, 0x05, 0x0F, 0x45, 0x4F, 0x60,
                                                  0x81, 0x86, 0xDD, 0x2C, 0x3C, 0x06, 0x11};
  const int ops = static_cast<int>(rng.range(1, 4));
  for (int i = 0; i < ops; ++i) {
    switch (rng.below(5)) {
      case 0:  // flip a bit
        if (!f.empty()) f[rng.below(f.size())] ^= static_cast<std::uint8_t>(1u << rng.below(8));
        break;
      case 1:  // an interesting byte
        if (!f.empty()) f[rng.below(f.size())] = kInteresting[rng.below(std::size(kInteresting))];
        break;
      case 2:  // cut
        f.resize(rng.below(f.size() + 1));
        break;
      case 3: {  // insert a VLAN tag or random bytes somewhere
        const std::size_t at = rng.below(f.size() + 1);
        const std::uint8_t tag[4] = {0x81, 0x00, 0x00, static_cast<std::uint8_t>(rng.next())};
        f.insert(f.begin() + static_cast<std::ptrdiff_t>(at), tag, tag + 4);
        break;
      }
      default:  // a 16-bit field set to a random length-like value
        if (f.size() >= 2) {
          const std::size_t at = rng.below(f.size() - 1);
          const auto v = static_cast<std::uint16_t>(rng.below(f.size() + 64));
          f[at] = static_cast<std::uint8_t>(v >> 8);
          f[at + 1] = static_cast<std::uint8_t>(v);
        }
        break;
    }
  }
}

TEST(ParserFuzzReplay, FixedSeedMutations) {
  const auto corpus = load_corpus();
  ASSERT_FALSE(corpus.empty());
  ctxgen::Rng rng(ctxalloc::testing::test_seed(0xF022));
  const std::uint64_t n = ctxalloc::testing::scaled(2000000, 20000);
  Tally t;
  for (std::uint64_t i = 0; i < n; ++i) {
    std::vector<std::uint8_t> f = corpus[rng.below(corpus.size())];
    mutate(f, rng);
    t.add(f);
  }
  // Mutation must not only break frames: some stay flows.
  EXPECT_GT(t.status[0], n / 50);
  EXPECT_GT(t.status[2], n / 50);
}

struct ForwardSink : ctxgen::PacketSink {
  std::size_t frames = 0;
  bool packet(std::span<const std::byte> frame, const ctxgen::PacketRecord&,
              std::string*) override {
    LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(frame.data()), frame.size());
    ++frames;
    return true;
  }
};

TEST(ParserFuzzReplay, GeneratedTraffic) {
  ctxgen::Profile p = *ctxgen::find_profile("mixed");
  p.malformed_share = 0.3;
  ForwardSink sink;
  ctxgen::Manifest m;
  std::string error;
  ASSERT_TRUE(ctxgen::generate(p, ctxalloc::testing::test_seed(77), sink, m, &error)) << error;
  EXPECT_EQ(sink.frames, p.packets);
}

}  // namespace
