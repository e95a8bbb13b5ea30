// Spawned tasks: the loop owns a detached task's frame until it finishes (task.hpp).
#include <corio/loop.hpp>

namespace corio {

void link_task(Loop& loop, detail::TaskNode* n) noexcept {
  n->next = loop.tasks_;
  if (loop.tasks_) loop.tasks_->prev = n;
  loop.tasks_ = n;
}

void unlink_task(Loop& loop, detail::TaskNode* n) noexcept {
  if (n->prev)
    n->prev->next = n->next;
  else
    loop.tasks_ = n->next;
  if (n->next) n->next->prev = n->prev;
}

}  // namespace corio
