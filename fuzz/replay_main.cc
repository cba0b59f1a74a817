// The replay driver of every fuzz target, in every variant: runs the target over each
// file of the corpus folders given as arguments (crash inputs kept as regression tests
// live there too), then over fixed-seed mutations of them and fresh random inputs, so
// that CI exercises the target in a few seconds without libFuzzer.
//   <target>_replay CORPUS_DIR... [--runs N]   (CTXALLOC_TEST_SEED changes the seed)
#include <dirent.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

using Input = std::vector<std::uint8_t>;

// splitmix64: a fixed, portable sequence from the seed.
struct Rng {
  std::uint64_t s;
  std::uint64_t next() {
    std::uint64_t z = (s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  std::size_t below(std::size_t n) { return n == 0 ? 0 : next() % n; }
};

bool load_dir(const std::string& dir, std::vector<Input>& out) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return false;
  std::vector<std::string> names;
  while (const dirent* e = readdir(d)) {
    if (e->d_name[0] != '.') names.emplace_back(e->d_name);
  }
  closedir(d);
  std::sort(names.begin(), names.end());  // a fixed order: the replay is reproducible
  for (const std::string& n : names) {
    std::ifstream in(dir + "/" + n, std::ios::binary);
    out.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  return true;
}

// Byte flips, insertions, deletions and splices, in the spirit of libFuzzer's.
Input mutate(const Input& base, const std::vector<Input>& corpus, Rng& rng) {
  Input f = base;
  const std::size_t edits = 1 + rng.below(8);
  for (std::size_t i = 0; i < edits; ++i) {
    switch (rng.below(4)) {
      case 0:
        if (!f.empty()) f[rng.below(f.size())] ^= static_cast<std::uint8_t>(1 + rng.below(255));
        break;
      case 1:
        f.insert(f.begin() + static_cast<long>(rng.below(f.size() + 1)),
                 static_cast<std::uint8_t>(rng.next()));
        break;
      case 2:
        if (!f.empty()) f.erase(f.begin() + static_cast<long>(rng.below(f.size())));
        break;
      default: {
        const Input& other = corpus[rng.below(corpus.size())];
        if (other.empty()) break;
        const std::size_t from = rng.below(other.size());
        const std::size_t n = 1 + rng.below(std::min<std::size_t>(64, other.size() - from));
        f.insert(f.begin() + static_cast<long>(rng.below(f.size() + 1)),
                 other.begin() + static_cast<long>(from),
                 other.begin() + static_cast<long>(from + n));
      }
    }
  }
  return f;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<Input> corpus;
  std::size_t runs = 2000;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--runs") == 0 && i + 1 < argc) {
      runs = std::strtoull(argv[++i], nullptr, 10);
    } else if (!load_dir(argv[i], corpus)) {
      std::fprintf(stderr, "cannot open corpus folder %s\n", argv[i]);
      return 1;
    }
  }
  if (corpus.empty()) {
    std::fprintf(stderr, "an empty corpus: the replay would test nothing\n");
    return 1;
  }
  if (const char* scale = std::getenv("CTXALLOC_TEST_SCALE")) {
    runs = std::max<std::size_t>(
        50, static_cast<std::size_t>(static_cast<double>(runs) * std::atof(scale)));
  }
  const char* seed = std::getenv("CTXALLOC_TEST_SEED");
  Rng rng{seed != nullptr ? std::strtoull(seed, nullptr, 0) : 1};
  for (const Input& f : corpus)
    LLVMFuzzerTestOneInput(f.data(), f.size());
  for (std::size_t r = 0; r < runs; ++r) {
    Input f;
    if (r % 4 == 3) {  // fresh random bytes
      f.resize(rng.below(2048));
      for (auto& b : f)
        b = static_cast<std::uint8_t>(rng.next());
    } else {
      f = mutate(corpus[rng.below(corpus.size())], corpus, rng);
    }
    LLVMFuzzerTestOneInput(f.data(), f.size());
  }
  std::printf("replayed %zu corpus inputs and %zu fixed-seed inputs\n", corpus.size(), runs);
  return 0;
}
