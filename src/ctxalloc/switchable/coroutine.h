// ContextTask: a C++20 coroutine that runs in its own context. The coroutine's first
// parameter is the Context it belongs to, and whenever the coroutine runs -- whoever resumes it,
// directly or through a scheduler -- its context is current, and the resumer's mode and context are
// back as soon as it suspends, returns or throws. Several tasks interleave on one thread, each
// allocating in its own context:
//
//   ContextTask<int> work(Context& ctx, int n) {
//     std::pmr::vector<int> v(...);        // or plain new: the context is current here
//     co_await std::suspend_always{};      // the caller's allocator is current again
//     co_return n;
//   }
//   auto t = work(*ctx, 3);  t.resume(); ...; t.resume();  int r = t.result();
#pragma once

#include <coroutine>
#include <cstddef>
#include <exception>
#include <new>
#include <optional>
#include <utility>

#include "ctxalloc/switchable/context.h"

namespace ctxalloc {

namespace detail {

/// The thread's (mode, context) when a coroutine was resumed, put back when it suspends.
struct SavedSwitch {
  Mode mode = Mode::uninitialized;
  Context* context = nullptr;

  void enter(Context* c) noexcept {
    mode = t_state.mode;
    context = t_state.context;
    t_state.context = c;
    t_state.mode = Mode::context;
  }
  void leave() noexcept {
    t_state.mode = mode;
    t_state.context = context;
  }
};

/// Wraps any awaitable: leaves the context when the coroutine suspends on it, enters it
/// again when the coroutine resumes.
template <class Awaiter>
struct SwitchingAwaiter {
  Awaiter inner;
  SavedSwitch* saved;
  Context* context;

  bool await_ready() { return inner.await_ready(); }
  template <class Promise>
  auto await_suspend(std::coroutine_handle<Promise> h) {
    saved->leave();
    return inner.await_suspend(h);
  }
  decltype(auto) await_resume() {
    saved->enter(context);
    return inner.await_resume();
  }
};

template <class A>
decltype(auto) awaiter_of(A&& a) {
  if constexpr (requires { std::forward<A>(a).operator co_await(); }) {
    return std::forward<A>(a).operator co_await();
  } else if constexpr (requires { operator co_await(std::forward<A>(a)); }) {
    return operator co_await(std::forward<A>(a));
  } else {
    return std::forward<A>(a);
  }
}

template <class T>
struct ReturnSlot {
  std::optional<T> value;
  template <class U>
  void return_value(U&& v) {
    value.emplace(std::forward<U>(v));
  }
};
template <>
struct ReturnSlot<void> {
  void return_void() noexcept {}
};

}  // namespace detail

template <class T = void>
class ContextTask {
 public:
  struct promise_type : detail::ReturnSlot<T> {
    Context* context;
    detail::SavedSwitch saved;
    std::exception_ptr error;

    template <class... Args>
    explicit promise_type(Context& c, Args&&...) noexcept : context(&c) {}

    // The frame comes from whatever is current where the coroutine is called (create it
    // under a ContextScope to put the frame in the context too), and goes back to its
    // owner when the task is destroyed.
    static void* operator new(std::size_t n) {
      void* p = ctxalloc::allocate(n);
      if (p == nullptr) throw std::bad_alloc();
      return p;
    }
    static void operator delete(void* p, std::size_t n) noexcept { ctxalloc::deallocate(p, n); }

    ContextTask get_return_object() noexcept {
      return ContextTask(std::coroutine_handle<promise_type>::from_promise(*this));
    }
    // Starts suspended; the first resume enters the context.
    auto initial_suspend() noexcept {
      struct Start {
        promise_type* p;
        bool await_ready() noexcept { return false; }
        void await_suspend(std::coroutine_handle<>) noexcept {}
        void await_resume() noexcept { p->saved.enter(p->context); }
      };
      return Start{this};
    }
    auto final_suspend() noexcept {
      struct Finish {
        promise_type* p;
        bool await_ready() noexcept { return false; }
        void await_suspend(std::coroutine_handle<>) noexcept { p->saved.leave(); }
        void await_resume() noexcept {}
      };
      return Finish{this};
    }
    void unhandled_exception() noexcept { error = std::current_exception(); }

    template <class A>
    auto await_transform(A&& a) {
      using Inner = std::remove_cvref_t<decltype(detail::awaiter_of(std::forward<A>(a)))>;
      return detail::SwitchingAwaiter<Inner>{detail::awaiter_of(std::forward<A>(a)), &saved,
                                             context};
    }
  };

  ContextTask(ContextTask&& o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
  ContextTask& operator=(ContextTask&& o) noexcept {
    if (this != &o) {
      destroy();
      h_ = std::exchange(o.h_, nullptr);
    }
    return *this;
  }
  ContextTask(const ContextTask&) = delete;
  ContextTask& operator=(const ContextTask&) = delete;
  /// Destroys the coroutine (its frame goes back to the context).
  ~ContextTask() { destroy(); }

  /// Runs the coroutine to its next suspension; false once it has finished.
  bool resume() {
    if (h_ == nullptr || h_.done()) return false;
    h_.resume();
    return !h_.done();
  }
  bool done() const noexcept { return h_ == nullptr || h_.done(); }
  Context& context() const noexcept { return *h_.promise().context; }
  std::coroutine_handle<promise_type> handle() const noexcept { return h_; }

  /// The value co_returned (rethrows what the coroutine threw). Once done.
  decltype(auto) result() {
    if (h_.promise().error) std::rethrow_exception(h_.promise().error);
    if constexpr (!std::is_void_v<T>) return std::move(*h_.promise().value);
  }

 private:
  explicit ContextTask(std::coroutine_handle<promise_type> h) noexcept : h_(h) {}
  void destroy() noexcept {
    if (h_ != nullptr) {
      h_.destroy();
      h_ = nullptr;
    }
  }
  std::coroutine_handle<promise_type> h_;
};

}  // namespace ctxalloc
