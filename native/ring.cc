#include "ring.h"

#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace untorn {

namespace {

// The kernel moves at most this much in one read or write (MAX_RW_COUNT), as
// pwritev2 does: a longer view gets a short count, never a wrapped length.
constexpr size_t kMaxRw = 0x7ffff000;

int SysSetup(unsigned entries, io_uring_params* p) {
  return static_cast<int>(syscall(__NR_io_uring_setup, entries, p));
}

int SysEnter(int fd, unsigned to_submit, unsigned min_complete, unsigned flags) {
  return static_cast<int>(syscall(__NR_io_uring_enter, fd, to_submit, min_complete, flags, nullptr, 0));
}

int SysRegister(int fd, unsigned opcode, const void* arg, unsigned nr_args) {
  return static_cast<int>(syscall(__NR_io_uring_register, fd, opcode, arg, nr_args));
}

// Best first. DEFER_TASKRUN (6.1) runs completion work only when this thread
// asks for events, and signals the eventfd when there is some: the kernel
// never interrupts JS (measured here: 1.2-1.4x the plain ring's writes at
// depth 4). COOP_TASKRUN is not a tier: it would leave completion work
// pending, without a wakeup, while the thread sleeps in epoll. SUBMIT_ALL
// (5.18) keeps submitting a batch past an entry the kernel refuses at once.
// A kernel that knows none of them (EINVAL) gets the plain ring.
constexpr unsigned kSetupTiers[] = {
    IORING_SETUP_SUBMIT_ALL | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
    IORING_SETUP_SUBMIT_ALL,
    0,
};

void* MapRing(int fd, size_t size, off_t offset) {
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, offset);
  return p == MAP_FAILED ? nullptr : p;
}

template <typename T>
T* At(void* base, unsigned offset) {
  return reinterpret_cast<T*>(static_cast<char*>(base) + offset);
}

}  // namespace

int Ring::Open(unsigned entries) {
  io_uring_params p;
  int fd = -EINVAL;
  for (unsigned flags : kSetupTiers) {
    std::memset(&p, 0, sizeof p);
    p.flags = flags;
    fd = SysSetup(entries, &p);
    if (fd >= 0) break;
    fd = -errno;
    // Only a flag the kernel does not know is worth another try; EPERM,
    // ENOSYS and ENOMEM will not change with other flags.
    if (fd != -EINVAL) return fd;
  }
  if (fd < 0) return fd;
  ring_fd_ = fd;
  setup_flags_ = p.flags;
  // IORING_OP_READ/WRITE came with 5.6, as did this feature bit.
  if (!(p.features & IORING_FEAT_RW_CUR_POS)) {
    Close();
    return -EINVAL;
  }

  sq_map_size_ = p.sq_off.array + p.sq_entries * sizeof(unsigned);
  cq_map_size_ = p.cq_off.cqes + p.cq_entries * sizeof(io_uring_cqe);
  bool single = (p.features & IORING_FEAT_SINGLE_MMAP) != 0;
  if (single && cq_map_size_ > sq_map_size_) sq_map_size_ = cq_map_size_;
  sq_map_ = MapRing(fd, sq_map_size_, IORING_OFF_SQ_RING);
  cq_map_ = single ? sq_map_ : MapRing(fd, cq_map_size_, IORING_OFF_CQ_RING);
  sqes_size_ = p.sq_entries * sizeof(io_uring_sqe);
  sqes_ = static_cast<io_uring_sqe*>(MapRing(fd, sqes_size_, IORING_OFF_SQES));
  if (sq_map_ == nullptr || cq_map_ == nullptr || sqes_ == nullptr) {
    int err = -errno;
    Close();
    return err;
  }
  sq_head_ = At<unsigned>(sq_map_, p.sq_off.head);
  sq_tail_ = At<unsigned>(sq_map_, p.sq_off.tail);
  sq_mask_ = *At<unsigned>(sq_map_, p.sq_off.ring_mask);
  sq_entries_ = p.sq_entries;
  sq_array_ = At<unsigned>(sq_map_, p.sq_off.array);
  cq_head_ = At<unsigned>(cq_map_, p.cq_off.head);
  cq_tail_ = At<unsigned>(cq_map_, p.cq_off.tail);
  cq_mask_ = *At<unsigned>(cq_map_, p.cq_off.ring_mask);
  cqes_ = At<io_uring_cqe>(cq_map_, p.cq_off.cqes);
  cq_entries_ = p.cq_entries;
  // The SQ array maps ring slots to SQE indexes; untorn keeps them equal.
  for (unsigned i = 0; i < sq_entries_; i++) sq_array_[i] = i;

  event_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (event_fd_ < 0 || SysRegister(fd, IORING_REGISTER_EVENTFD, &event_fd_, 1) < 0) {
    int err = -errno;
    Close();
    return err;
  }
  return 0;
}

void Ring::Close() {
  if (sqes_ != nullptr) munmap(sqes_, sqes_size_);
  if (cq_map_ != nullptr && cq_map_ != sq_map_) munmap(cq_map_, cq_map_size_);
  if (sq_map_ != nullptr) munmap(sq_map_, sq_map_size_);
  if (event_fd_ >= 0) close(event_fd_);
  if (ring_fd_ >= 0) close(ring_fd_);
  sqes_ = nullptr;
  cq_map_ = sq_map_ = nullptr;
  event_fd_ = ring_fd_ = -1;
  unpublished_ = 0;
}

io_uring_sqe* Ring::NextSqe(uint64_t user_data) {
  unsigned tail = *sq_tail_ + unpublished_;
  if (tail - __atomic_load_n(sq_head_, __ATOMIC_ACQUIRE) >= sq_entries_) return nullptr;
  io_uring_sqe* sqe = &sqes_[tail & sq_mask_];
  std::memset(sqe, 0, sizeof *sqe);
  sqe->user_data = user_data;
  unpublished_++;
  return sqe;
}

int Ring::Enter(unsigned min_complete) {
  // Release: the kernel must see the SQEs' contents before the new tail.
  unsigned tail = *sq_tail_ + unpublished_;
  __atomic_store_n(sq_tail_, tail, __ATOMIC_RELEASE);
  unpublished_ = 0;
  // Everything between the kernel's head and our tail, including what an
  // earlier enter left (EAGAIN, EBUSY), goes now.
  unsigned to_submit = tail - __atomic_load_n(sq_head_, __ATOMIC_ACQUIRE);
  int r;
  do r = SysEnter(ring_fd_, to_submit, min_complete, IORING_ENTER_GETEVENTS);
  while (r < 0 && errno == EINTR);
  return r < 0 ? -errno : r;
}

void Ring::DrainEventFd() {
  eventfd_t count;
  eventfd_read(event_fd_, &count);
}

void PrepWrite(io_uring_sqe* sqe, int fd, const void* data, size_t length, int64_t position, int rwflags) {
  sqe->opcode = IORING_OP_WRITE;
  sqe->fd = fd;
  sqe->addr = reinterpret_cast<uintptr_t>(data);
  sqe->len = static_cast<uint32_t>(length < kMaxRw ? length : kMaxRw);
  sqe->off = static_cast<uint64_t>(position);
  sqe->rw_flags = rwflags;
}

void PrepRead(io_uring_sqe* sqe, int fd, void* data, size_t length, int64_t position) {
  sqe->opcode = IORING_OP_READ;
  sqe->fd = fd;
  sqe->addr = reinterpret_cast<uintptr_t>(data);
  sqe->len = static_cast<uint32_t>(length < kMaxRw ? length : kMaxRw);
  sqe->off = static_cast<uint64_t>(position);
}

void PrepFsync(io_uring_sqe* sqe, int fd, bool datasync) {
  sqe->opcode = IORING_OP_FSYNC;
  sqe->fd = fd;
  sqe->fsync_flags = datasync ? IORING_FSYNC_DATASYNC : 0;
}

}  // namespace untorn
