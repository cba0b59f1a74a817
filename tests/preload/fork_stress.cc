// A plain program (no ctxalloc header) that forks while other threads allocate, for the
// preload tests: workers allocate and free with malloc and new, hand blocks to each other
// (cross-thread frees) and start short-lived threads; the main thread forks again and
// again. Each child checks and frees the blocks the workers had parked (blocks of heaps
// whose threads do not exist in the child), allocates, starts threads of its own that
// allocate and free across each other, and exits 0 when every check passed. The parent
// exits 0 when every child did. An alarm turns a deadlock into a failure.
//
//   fork_stress [FORKS] [WORKERS]
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

namespace {

// A block stamped with its size and a byte pattern derived from its address.
struct Stamp {
  std::size_t size;
  std::uintptr_t self;
};

void* make_block(std::size_t size) {
  if (size < sizeof(Stamp)) size = sizeof(Stamp);
  auto* p = static_cast<unsigned char*>(std::malloc(size));
  if (p == nullptr) return nullptr;
  const Stamp s{size, reinterpret_cast<std::uintptr_t>(p)};
  std::memcpy(p, &s, sizeof s);
  for (std::size_t i = sizeof s; i < size; ++i)
    p[i] = static_cast<unsigned char>(s.self >> 4) ^ static_cast<unsigned char>(i);
  return p;
}

bool check_block(const void* block) {
  const auto* p = static_cast<const unsigned char*>(block);
  Stamp s;
  std::memcpy(&s, p, sizeof s);
  if (s.self != reinterpret_cast<std::uintptr_t>(p)) return false;
  for (std::size_t i = sizeof s; i < s.size; ++i) {
    if (p[i] != (static_cast<unsigned char>(s.self >> 4) ^ static_cast<unsigned char>(i)))
      return false;
  }
  return true;
}

std::size_t pick_size(std::uint64_t& rng) {
  rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
  const unsigned r = static_cast<unsigned>(rng >> 33);
  if (r % 1000 == 0) return (std::size_t{2} << 20) + r % 4096;  // a large block now and then
  if (r % 50 == 0) return 2048 + r % 60000;                     // medium
  return 16 + r % 1000;                                         // small
}

// Blocks parked by workers for others (and for the children) to free. Its lock is the
// program's own: the program makes it fork-safe itself, as POSIX expects.
constexpr std::size_t kParked = 512;
pthread_mutex_t g_park_lock = PTHREAD_MUTEX_INITIALIZER;
void* g_parked[kParked];
std::atomic<bool> g_stop{false};
std::atomic<int> g_failures{0};
// Workers that have allocated (and so have a heap of their own): the first fork waits for
// all of them, so that every child inherits heaps whose threads it does not have, however
// slowly a loaded machine starts the threads.
std::atomic<unsigned> g_allocating{0};

void park_or_swap(void*& block) {
  pthread_mutex_lock(&g_park_lock);
  const std::size_t i = reinterpret_cast<std::uintptr_t>(block) / 16 % kParked;
  std::swap(block, g_parked[i]);
  pthread_mutex_unlock(&g_park_lock);
}

void worker(unsigned id) {
  std::uint64_t rng = 0x9e3779b97f4a7c15ULL * (id + 1);
  std::vector<void*> mine;
  unsigned round = 0;
  while (!g_stop.load(std::memory_order_relaxed)) {
    void* b = make_block(pick_size(rng));
    if (b == nullptr) {
      g_failures.fetch_add(1);
      continue;
    }
    mine.push_back(b);
    if (mine.size() == 1 && round == 0) g_allocating.fetch_add(1);
    if (mine.size() > 200) {
      // Free half, park a few (another thread or a child frees them).
      for (std::size_t i = 0; i < mine.size(); i += 2) {
        void* x = mine[i];
        if (i % 16 == 0) park_or_swap(x);
        if (x != nullptr) {
          if (!check_block(x)) g_failures.fetch_add(1);
          std::free(x);
        }
      }
      std::vector<void*> keep;
      for (std::size_t i = 1; i < mine.size(); i += 2)
        keep.push_back(mine[i]);
      mine.swap(keep);
    }
    if (++round % 5000 == 0) {
      // Thread churn: a short-lived thread allocates, frees, and exits.
      std::thread([] {
        auto v = std::make_unique<std::vector<std::string>>();
        for (int i = 0; i < 1000; ++i)
          v->push_back(std::string(static_cast<std::size_t>(20 + i % 300), 'x'));
      }).join();
    }
  }
  for (void* x : mine) {
    if (!check_block(x)) g_failures.fetch_add(1);
    std::free(x);
  }
}

// The child: frees what the vanished workers parked, then works with threads of its own.
int child_main() {
  alarm(60);  // a deadlock becomes SIGALRM: the parent sees the child fail
  int bad = 0;
  for (void*& b : g_parked) {
    if (b == nullptr) continue;
    if (!check_block(b)) ++bad;
    std::free(b);
    b = nullptr;
  }
  std::atomic<int> thread_bad{0};
  std::vector<void*> handoff(2000, nullptr);
  std::thread producer([&] {
    std::uint64_t rng = 42;
    for (auto& h : handoff)
      h = make_block(pick_size(rng));
  });
  producer.join();
  std::thread consumer([&] {  // frees another thread's blocks
    for (void* h : handoff) {
      if (h == nullptr || !check_block(h)) thread_bad.fetch_add(1);
      std::free(h);
    }
  });
  consumer.join();
  std::uint64_t rng = 7;
  for (int i = 0; i < 20000; ++i) {
    void* b = make_block(pick_size(rng));
    if (b == nullptr || !check_block(b)) ++bad;
    std::free(b);
  }
  if (bad + thread_bad.load() != 0) {
    std::fprintf(stderr, "fork_stress child %d: %d bad blocks\n", getpid(),
                 bad + thread_bad.load());
    return 1;
  }
  return 0;
}

void lock_park() {
  pthread_mutex_lock(&g_park_lock);
}
void unlock_park() {
  pthread_mutex_unlock(&g_park_lock);
}

}  // namespace

int main(int argc, char** argv) {
  const int forks = argc > 1 ? std::atoi(argv[1]) : 20;
  const unsigned workers = argc > 2 ? static_cast<unsigned>(std::atoi(argv[2])) : 3;
  alarm(240);
  pthread_atfork(&lock_park, &unlock_park, &unlock_park);
  std::vector<std::thread> threads;
  for (unsigned i = 0; i < workers; ++i)
    threads.emplace_back(worker, i);
  while (g_allocating.load() < workers)
    usleep(100);
  int failed_children = 0;
  for (int f = 0; f < forks; ++f) {
    usleep(2000);
    const pid_t pid = fork();
    if (pid < 0) {
      std::perror("fork");
      return 2;
    }
    if (pid == 0) std::exit(child_main());  // exit(): the exit report runs in the child too
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      std::fprintf(stderr, "fork_stress: child %d failed (status 0x%x)\n", pid, status);
      ++failed_children;
    }
  }
  g_stop.store(true);
  for (auto& t : threads)
    t.join();
  for (void*& b : g_parked) {
    if (b != nullptr && !check_block(b)) g_failures.fetch_add(1);
    std::free(b);
  }
  if (failed_children != 0 || g_failures.load() != 0) {
    std::fprintf(stderr, "fork_stress: %d failed children, %d bad blocks\n", failed_children,
                 g_failures.load());
    return 1;
  }
  std::printf("fork_stress: %d forks, every child passed\n", forks);
  return 0;
}
