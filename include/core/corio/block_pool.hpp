// BlockPool: recycles the memory of objects made per event (the Lua runtime's per-message
// receive and send). malloc and free were ~6% of a Lua echo server's instructions, and a
// thread_local free list costs a __tls_get_addr per access in a dlopen()ed module. Not
// thread-safe: one per loop's user.
#pragma once
#include <cstddef>
#include <new>

namespace corio {

class BlockPool {
 public:
  BlockPool() = default;
  BlockPool(const BlockPool&) = delete;
  BlockPool& operator=(const BlockPool&) = delete;
  ~BlockPool() {
    for (List& l : lists_)
      while (Node* p = l.top) {
        l.top = p->next;
        ::operator delete(p);
      }
  }

  void* take(std::size_t n) {
    List* l = find(n);
    if (!l || !l->top) return ::operator new(n);
    Node* p = l->top;
    l->top = p->next;
    --l->count;
    return p;
  }
  void give(void* p, std::size_t n) noexcept {
    List* l = find(n);
    if (!l && !(l = claim(n))) return ::operator delete(p);
    if (l->count >= kKeep) return ::operator delete(p);
    l->top = new (p) Node{l->top};
    ++l->count;
  }

 private:
  static constexpr std::size_t kKeep = 256;  // blocks kept per size
  struct Node {
    Node* next;
  };
  struct List {
    std::size_t size = 0;
    Node* top = nullptr;
    std::size_t count = 0;
  };
  List* find(std::size_t n) noexcept {
    for (List& l : lists_)
      if (l.size == n) return &l;
    return nullptr;
  }
  List* claim(std::size_t n) noexcept {
    List* l = find(0);
    if (l) l->size = n;
    return l;
  }
  List lists_[4];
};

}  // namespace corio
