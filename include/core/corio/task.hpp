// Task<T>: a lazily started C++20 coroutine that owns its frame; awaiting it runs it and
// yields its result (or rethrows its exception). spawn() detaches a Task<void> onto a
// loop: it starts at once, the loop owns the frame until it finishes (or the loop is
// destroyed), and an exception escaping it goes to Loop::report — never lost.
#pragma once
#include <corio/loop.hpp>

#include <coroutine>
#include <exception>
#include <optional>
#include <utility>

namespace corio {

template <class T = void>
class Task;

namespace detail {

struct PromiseBase {
  std::coroutine_handle<> continuation = std::noop_coroutine();
  std::exception_ptr error;

  std::suspend_always initial_suspend() noexcept { return {}; }
  struct FinalAwaiter {
    bool await_ready() noexcept { return false; }
    template <class P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) noexcept {
      return h.promise().continuation;  // symmetric transfer: no stack growth
    }
    void await_resume() noexcept {}
  };
  FinalAwaiter final_suspend() noexcept { return {}; }
  void unhandled_exception() noexcept { error = std::current_exception(); }
};

template <class T>
struct Promise : PromiseBase {
  std::optional<T> value;
  Task<T> get_return_object() noexcept;
  template <class U>
  void return_value(U&& v) {
    value.emplace(std::forward<U>(v));
  }
  T result() {
    if (error) std::rethrow_exception(error);
    return std::move(*value);
  }
};

template <>
struct Promise<void> : PromiseBase {
  Task<void> get_return_object() noexcept;
  void return_void() noexcept {}
  void result() {
    if (error) std::rethrow_exception(error);
  }
};

}  // namespace detail

template <class T>
class [[nodiscard]] Task {
 public:
  using promise_type = detail::Promise<T>;
  using Handle = std::coroutine_handle<promise_type>;

  Task() noexcept = default;
  explicit Task(Handle h) noexcept : h_(h) {}
  Task(Task&& o) noexcept : h_(std::exchange(o.h_, {})) {}
  Task& operator=(Task&& o) noexcept {
    if (this != &o) {
      if (h_) h_.destroy();
      h_ = std::exchange(o.h_, {});
    }
    return *this;
  }
  ~Task() {
    if (h_) h_.destroy();
  }

  bool valid() const noexcept { return bool(h_); }
  bool done() const noexcept { return h_ && h_.done(); }
  // Runs the task until its first suspension without awaiting it; it stays owned here:
  // destroying the Task destroys its frame, wherever it is suspended. An owner that drives
  // coroutines of its own (a protocol client's reader and writer) keeps them this way.
  void start() {
    if (h_ && !h_.done()) h_.resume();
  }

  bool await_ready() const noexcept { return !h_ || h_.done(); }
  std::coroutine_handle<> await_suspend(std::coroutine_handle<> awaiting) noexcept {
    h_.promise().continuation = awaiting;
    return h_;
  }
  T await_resume() { return h_.promise().result(); }

 private:
  Handle h_;
};

namespace detail {

template <class T>
Task<T> Promise<T>::get_return_object() noexcept {
  return Task<T>(std::coroutine_handle<Promise<T>>::from_promise(*this));
}
inline Task<void> Promise<void>::get_return_object() noexcept {
  return Task<void>(std::coroutine_handle<Promise<void>>::from_promise(*this));
}

// The frame of a spawned task: registered with its loop, destroys itself when done.
struct Detached {
  struct promise_type {
    Loop& loop;
    TaskNode node;
    promise_type(Loop& l, Task<void>&) noexcept : loop(l) {
      node.frame = std::coroutine_handle<promise_type>::from_promise(*this);
      link_task(loop, &node);
    }
    ~promise_type() { unlink_task(loop, &node); }
    Detached get_return_object() noexcept {
      return {std::coroutine_handle<promise_type>::from_promise(*this)};
    }
    std::suspend_always initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { loop.report(std::current_exception()); }
  };
  std::coroutine_handle<promise_type> h;
};

inline Detached run_detached(Loop&, Task<void> task) { co_await std::move(task); }

}  // namespace detail

// Starts `task` now, on `loop`; it runs until its first suspension before spawn returns.
inline void spawn(Loop& loop, Task<void> task) { detail::run_detached(loop, std::move(task)).h.resume(); }
inline void spawn(Task<void> task) { spawn(Loop::current(), std::move(task)); }

}  // namespace corio
