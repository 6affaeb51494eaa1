// SOCK_SEQPACKET socket pairs for talking to `criu swrk`, with whole-datagram reads sized by
// MSG_PEEK | MSG_TRUNC and file descriptors passed by SCM_RIGHTS. Node has none of these.
//
// Reads are driven by a libuv poll handle on the event loop: no thread per socket and no busy
// polling. Sends are attempted at once; a send that would block is queued and flushed when the
// socket becomes writable, so callers never block the loop.
//
// Exports:
//   socketpair(stream?): [ours, theirs]  both close-on-exec; `ours` is non-blocking, `theirs` blocking;
//                        SOCK_SEQPACKET, or SOCK_STREAM when `stream` is true
//   closeFd(fd): void
//   peerCredentials(fd): {pid, uid, gid}   SO_PEERCRED of a connected unix socket
//   mkfifo(path, mode): void               a named pipe (Node has no mkfifo)
//   class Channel(fd, onMessage(buf, fds), onEnd(errno))
//     send(buf, fds?), close(), drain(), ref(), unref()
// onEnd(0) means the peer closed the socket; onEnd(errno) a socket error. After onEnd or close(),
// no more callbacks arrive. Received fds are close-on-exec and belong to the JS side.

#include <node_api.h>
#include <uv.h>

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <limits.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <deque>
#include <string>
#include <vector>

namespace {

// The kernel's SCM_MAX_FD: a larger control buffer can never be needed, so fds are never truncated.
constexpr size_t kMaxFds = 253;

#define CHECK_NAPI(env, call)                                   \
  do {                                                          \
    if ((call) != napi_ok) {                                    \
      const napi_extended_error_info* info = nullptr;           \
      napi_get_last_error_info((env), &info);                   \
      napi_throw_error((env), nullptr,                          \
                       info && info->error_message              \
                           ? info->error_message                \
                           : "N-API call failed: " #call);      \
      return nullptr;                                           \
    }                                                           \
  } while (0)

napi_value ThrowErrno(napi_env env, int err, const char* what) {
  std::string msg = std::string(what) + ": " + strerror(err);
  napi_value code, message, error;
  const char* name = uv_err_name(-err);
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, msg.c_str(), msg.size(), &message);
  napi_create_error(env, code, message, &error);
  napi_value errnoValue;
  napi_create_int32(env, err, &errnoValue);
  napi_set_named_property(env, error, "errno", errnoValue);
  napi_set_named_property(env, error, "syscall", message);
  napi_throw(env, error);
  return nullptr;
}

struct Pending {
  std::vector<char> data;
  std::vector<int> fds;  // duplicated at queue time, so the caller may close its copies at once
};

class Channel {
 public:
  static napi_value Init(napi_env env, napi_value exports);

 private:
  static napi_value New(napi_env env, napi_callback_info info);
  static napi_value Send(napi_env env, napi_callback_info info);
  static napi_value Close(napi_env env, napi_callback_info info);
  static napi_value Drain(napi_env env, napi_callback_info info);
  static napi_value Ref(napi_env env, napi_callback_info info);
  static napi_value Unref(napi_env env, napi_callback_info info);
  static void Finalize(napi_env env, void* data, void* hint);
  static void OnPoll(uv_poll_t* handle, int status, int events);
  static void OnClosed(uv_handle_t* handle);
  static Channel* Unwrap(napi_env env, napi_callback_info info, size_t* argc, napi_value* argv);

  void ReadAll();
  bool FlushQueue();  // false when the socket failed (End was called)
  int TrySend(const char* data, size_t len, const std::vector<int>& fds);
  void UpdatePoll();
  void End(int err);
  void Shutdown();
  void EmitMessage(std::vector<char>& data, std::vector<int>& fds);

  napi_env env_ = nullptr;
  napi_ref self_ = nullptr;        // strong while the socket is open, so polling keeps us alive
  napi_ref on_message_ = nullptr;
  napi_ref on_end_ = nullptr;
  napi_async_context async_ = nullptr;
  uv_poll_t* poll_ = nullptr;
  int fd_ = -1;
  bool closed_ = false;
  bool finalized_ = false;
  std::deque<Pending> queue_;
};

Channel* Channel::Unwrap(napi_env env, napi_callback_info info, size_t* argc, napi_value* argv) {
  napi_value self;
  void* data = nullptr;
  if (napi_get_cb_info(env, info, argc, argv, &self, nullptr) != napi_ok) return nullptr;
  if (napi_unwrap(env, self, &data) != napi_ok) {
    napi_throw_type_error(env, nullptr, "not a Channel");
    return nullptr;
  }
  return static_cast<Channel*>(data);
}

napi_value Channel::New(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], self;
  CHECK_NAPI(env, napi_get_cb_info(env, info, &argc, argv, &self, nullptr));
  int32_t fd;
  napi_valuetype t1, t2;
  if (argc < 3 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0 ||
      napi_typeof(env, argv[1], &t1) != napi_ok || t1 != napi_function ||
      napi_typeof(env, argv[2], &t2) != napi_ok || t2 != napi_function) {
    napi_throw_type_error(env, nullptr, "Channel(fd, onMessage, onEnd): bad arguments");
    return nullptr;
  }
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) return ThrowErrno(env, errno, "fcntl");

  auto* ch = new Channel();
  ch->env_ = env;
  ch->fd_ = fd;
  ch->poll_ = new uv_poll_t;
  uv_loop_t* loop;
  CHECK_NAPI(env, napi_get_uv_event_loop(env, &loop));
  int rc = uv_poll_init(loop, ch->poll_, fd);
  if (rc != 0) {
    delete ch->poll_;
    delete ch;
    return ThrowErrno(env, -rc, "uv_poll_init");
  }
  ch->poll_->data = ch;
  CHECK_NAPI(env, napi_create_reference(env, argv[1], 1, &ch->on_message_));
  CHECK_NAPI(env, napi_create_reference(env, argv[2], 1, &ch->on_end_));
  napi_value name;
  CHECK_NAPI(env, napi_create_string_utf8(env, "SeqpacketChannel", NAPI_AUTO_LENGTH, &name));
  CHECK_NAPI(env, napi_async_init(env, self, name, &ch->async_));
  CHECK_NAPI(env, napi_wrap(env, self, ch, Finalize, nullptr, nullptr));
  CHECK_NAPI(env, napi_create_reference(env, self, 1, &ch->self_));
  ch->UpdatePoll();
  return self;
}

void Channel::UpdatePoll() {
  if (closed_) return;
  int events = UV_READABLE | UV_DISCONNECT;
  if (!queue_.empty()) events |= UV_WRITABLE;
  uv_poll_start(poll_, events, OnPoll);
}

void Channel::OnPoll(uv_poll_t* handle, int status, int events) {
  auto* ch = static_cast<Channel*>(handle->data);
  if (ch->closed_) return;
  napi_handle_scope scope;
  napi_open_handle_scope(ch->env_, &scope);
  if (status < 0) {
    ch->End(-status);
  } else {
    if ((events & UV_WRITABLE) && !ch->FlushQueue()) {
      napi_close_handle_scope(ch->env_, scope);
      return;
    }
    if (!ch->closed_ && (events & (UV_READABLE | UV_DISCONNECT))) ch->ReadAll();
    if (!ch->closed_) ch->UpdatePoll();
  }
  napi_close_handle_scope(ch->env_, scope);
}

void Channel::ReadAll() {
  while (!closed_) {
    // Size the next datagram without consuming it: MSG_TRUNC makes recv return its real length.
    ssize_t len = recv(fd_, nullptr, 0, MSG_PEEK | MSG_TRUNC | MSG_DONTWAIT);
    if (len < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      if (errno == EINTR) continue;
      End(errno);
      return;
    }
    if (len == 0) {
      // End of stream. CRIU never sends an empty datagram (criu_resp has required fields).
      End(0);
      return;
    }
    std::vector<char> data(static_cast<size_t>(len));
    alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)];
    struct iovec iov = {data.data(), data.size()};
    struct msghdr msg;
    memset(&msg, 0, sizeof(msg));
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    ssize_t got = recvmsg(fd_, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (got < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      if (errno == EINTR) continue;
      End(errno);
      return;
    }
    std::vector<int> fds;
    for (struct cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
        size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        const int* p = reinterpret_cast<const int*>(CMSG_DATA(c));
        for (size_t i = 0; i < n; i++) fds.push_back(p[i]);
      }
    }
    if (static_cast<size_t>(got) < data.size() || (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
      for (int fd : fds) close(fd);
      End(EMSGSIZE);
      return;
    }
    EmitMessage(data, fds);
  }
}

void Channel::EmitMessage(std::vector<char>& data, std::vector<int>& fds) {
  napi_env env = env_;
  napi_value buffer, fdArray, cb, self, result;
  void* dst;
  if (napi_create_buffer_copy(env, data.size(), data.data(), &dst, &buffer) != napi_ok ||
      napi_create_array_with_length(env, fds.size(), &fdArray) != napi_ok) {
    for (int fd : fds) close(fd);
    return;
  }
  for (size_t i = 0; i < fds.size(); i++) {
    napi_value v;
    napi_create_int32(env, fds[i], &v);
    napi_set_element(env, fdArray, static_cast<uint32_t>(i), v);
  }
  napi_get_reference_value(env, on_message_, &cb);
  napi_get_reference_value(env, self_, &self);
  napi_value args[2] = {buffer, fdArray};
  // napi_make_callback runs the microtask queue afterwards and reports uncaught exceptions.
  napi_make_callback(env, async_, self, cb, 2, args, &result);
}

int Channel::TrySend(const char* data, size_t len, const std::vector<int>& fds) {
  struct iovec iov = {const_cast<char*>(data), len};
  struct msghdr msg;
  memset(&msg, 0, sizeof(msg));
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  std::vector<char> control;
  if (!fds.empty()) {
    control.resize(CMSG_SPACE(sizeof(int) * fds.size()));
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  for (;;) {
    ssize_t n = sendmsg(fd_, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n >= 0) return 0;
    if (errno == EINTR) continue;
    return errno;
  }
}

bool Channel::FlushQueue() {
  while (!queue_.empty()) {
    Pending& p = queue_.front();
    int err = TrySend(p.data.data(), p.data.size(), p.fds);
    if (err == EAGAIN || err == EWOULDBLOCK) return true;
    for (int fd : p.fds) close(fd);
    queue_.pop_front();
    if (err != 0) {
      End(err);
      return false;
    }
  }
  return true;
}

napi_value Channel::Send(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  Channel* ch = Unwrap(env, info, &argc, argv);
  if (ch == nullptr) return nullptr;
  if (ch->closed_) return ThrowErrno(env, EBADF, "send on a closed channel");
  void* data;
  size_t len;
  bool isBuffer = false;
  if (argc < 1 || napi_is_buffer(env, argv[0], &isBuffer) != napi_ok || !isBuffer) {
    napi_throw_type_error(env, nullptr, "send(buffer, fds?): buffer must be a Buffer");
    return nullptr;
  }
  CHECK_NAPI(env, napi_get_buffer_info(env, argv[0], &data, &len));
  if (len == 0) {
    napi_throw_range_error(env, nullptr, "send: an empty datagram would read as end of stream");
    return nullptr;
  }
  std::vector<int> fds;
  if (argc >= 2) {
    napi_valuetype t;
    napi_typeof(env, argv[1], &t);
    if (t != napi_undefined && t != napi_null) {
      bool isArray = false;
      napi_is_array(env, argv[1], &isArray);
      uint32_t n = 0;
      if (!isArray || napi_get_array_length(env, argv[1], &n) != napi_ok || n > kMaxFds) {
        napi_throw_type_error(env, nullptr, "send: fds must be an array of at most 253 fds");
        return nullptr;
      }
      for (uint32_t i = 0; i < n; i++) {
        napi_value v;
        int32_t fd;
        napi_get_element(env, argv[1], i, &v);
        if (napi_get_value_int32(env, v, &fd) != napi_ok || fd < 0) {
          napi_throw_type_error(env, nullptr, "send: every fd must be a non-negative integer");
          return nullptr;
        }
        fds.push_back(fd);
      }
    }
  }
  if (ch->queue_.empty()) {
    int err = ch->TrySend(static_cast<const char*>(data), len, fds);
    if (err == 0) return nullptr;
    if (err != EAGAIN && err != EWOULDBLOCK) return ThrowErrno(env, err, "sendmsg");
  }
  Pending p;
  p.data.assign(static_cast<char*>(data), static_cast<char*>(data) + len);
  for (int fd : fds) {
    int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (copy < 0) {
      int err = errno;
      for (int c : p.fds) close(c);
      return ThrowErrno(env, err, "dup");
    }
    p.fds.push_back(copy);
  }
  ch->queue_.push_back(std::move(p));
  ch->UpdatePoll();
  return nullptr;
}

void Channel::End(int err) {
  if (closed_) return;
  napi_env env = env_;
  napi_value cb, self, arg, result;
  napi_get_reference_value(env, on_end_, &cb);
  napi_get_reference_value(env, self_, &self);
  Shutdown();
  napi_create_int32(env, err, &arg);
  napi_make_callback(env, async_, self, cb, 1, &arg, &result);
}

void Channel::Shutdown() {
  if (closed_) return;
  closed_ = true;
  for (Pending& p : queue_)
    for (int fd : p.fds) close(fd);
  queue_.clear();
  uv_poll_stop(poll_);
  uv_close(reinterpret_cast<uv_handle_t*>(poll_), OnClosed);
  poll_ = nullptr;
  close(fd_);
  fd_ = -1;
  if (!finalized_ && self_ != nullptr) napi_reference_unref(env_, self_, nullptr);
}

void Channel::OnClosed(uv_handle_t* handle) { delete reinterpret_cast<uv_poll_t*>(handle); }

napi_value Channel::Close(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  Channel* ch = Unwrap(env, info, &argc, nullptr);
  if (ch != nullptr) ch->Shutdown();
  return nullptr;
}

// Reads, now, every datagram already queued on the socket (the poll handle would deliver them on
// a later loop turn). Used once the peer process has exited: what it wrote is all in the buffer.
napi_value Channel::Drain(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  Channel* ch = Unwrap(env, info, &argc, nullptr);
  if (ch != nullptr && !ch->closed_) ch->ReadAll();
  return nullptr;
}

napi_value Channel::Ref(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  Channel* ch = Unwrap(env, info, &argc, nullptr);
  if (ch != nullptr && !ch->closed_) uv_ref(reinterpret_cast<uv_handle_t*>(ch->poll_));
  return nullptr;
}

napi_value Channel::Unref(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  Channel* ch = Unwrap(env, info, &argc, nullptr);
  if (ch != nullptr && !ch->closed_) uv_unref(reinterpret_cast<uv_handle_t*>(ch->poll_));
  return nullptr;
}

void Channel::Finalize(napi_env env, void* data, void*) {
  auto* ch = static_cast<Channel*>(data);
  ch->finalized_ = true;
  ch->Shutdown();
  if (ch->on_message_) napi_delete_reference(env, ch->on_message_);
  if (ch->on_end_) napi_delete_reference(env, ch->on_end_);
  if (ch->self_) napi_delete_reference(env, ch->self_);
  if (ch->async_) napi_async_destroy(env, ch->async_);
  delete ch;
}

napi_value Channel::Init(napi_env env, napi_value exports) {
  napi_property_descriptor methods[] = {
      {"send", nullptr, Send, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"close", nullptr, Close, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"drain", nullptr, Drain, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"ref", nullptr, Ref, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"unref", nullptr, Unref, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_value cls;
  CHECK_NAPI(env, napi_define_class(env, "Channel", NAPI_AUTO_LENGTH, New, nullptr,
                                    sizeof(methods) / sizeof(methods[0]), methods, &cls));
  CHECK_NAPI(env, napi_set_named_property(env, exports, "Channel", cls));
  return exports;
}

napi_value SocketPair(napi_env env, napi_callback_info info) {
  // socketpair(stream?): SOCK_SEQPACKET by default (CRIU's RPC), SOCK_STREAM when asked (the byte
  // stream of CRIU's page server).
  size_t argc = 1;
  napi_value argv[1];
  CHECK_NAPI(env, napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  bool stream = false;
  if (argc >= 1) napi_get_value_bool(env, argv[0], &stream);
  int sv[2];
  int type = stream ? SOCK_STREAM : SOCK_SEQPACKET;
  if (socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv) < 0) return ThrowErrno(env, errno, "socketpair");
  // Our end never blocks the event loop; the other end stays blocking, as `criu swrk` expects.
  int flags = fcntl(sv[0], F_GETFL);
  if (flags < 0 || fcntl(sv[0], F_SETFL, flags | O_NONBLOCK) < 0) {
    int err = errno;
    close(sv[0]);
    close(sv[1]);
    return ThrowErrno(env, err, "fcntl");
  }
  napi_value arr, a, b;
  CHECK_NAPI(env, napi_create_array_with_length(env, 2, &arr));
  napi_create_int32(env, sv[0], &a);
  napi_create_int32(env, sv[1], &b);
  napi_set_element(env, arr, 0, a);
  napi_set_element(env, arr, 1, b);
  return arr;
}

napi_value CloseFd(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  CHECK_NAPI(env, napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  if (argc < 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) {
    napi_throw_type_error(env, nullptr, "closeFd(fd): fd must be a non-negative integer");
    return nullptr;
  }
  if (close(fd) < 0 && errno != EINTR) return ThrowErrno(env, errno, "close");
  return nullptr;
}

// The credentials the kernel recorded for the peer of a connected unix socket when it connected.
// The peer cannot forge them; they are the identity of local callers.
napi_value PeerCredentials(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  CHECK_NAPI(env, napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  if (argc < 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) {
    napi_throw_type_error(env, nullptr, "peerCredentials(fd): fd must be a non-negative integer");
    return nullptr;
  }
  struct ucred cred;
  socklen_t len = sizeof(cred);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) return ThrowErrno(env, errno, "getsockopt");
  napi_value result, pid, uid, gid;
  CHECK_NAPI(env, napi_create_object(env, &result));
  napi_create_int32(env, cred.pid, &pid);
  napi_create_uint32(env, cred.uid, &uid);
  napi_create_uint32(env, cred.gid, &gid);
  napi_set_named_property(env, result, "pid", pid);
  napi_set_named_property(env, result, "uid", uid);
  napi_set_named_property(env, result, "gid", gid);
  return result;
}

// A named pipe (mkfifo(3)), which Node cannot make: how the gateway hands CRIU an image that has
// not arrived yet, CRIU's open waiting until the gateway writes it.
napi_value MakeFifo(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK_NAPI(env, napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  char path[PATH_MAX];
  size_t length = 0;
  uint32_t mode = 0;
  if (argc < 2 || napi_get_value_string_utf8(env, argv[0], path, sizeof(path), &length) != napi_ok ||
      length + 1 >= sizeof(path) || napi_get_value_uint32(env, argv[1], &mode) != napi_ok) {
    napi_throw_type_error(env, nullptr, "mkfifo(path, mode): a path shorter than PATH_MAX and a mode");
    return nullptr;
  }
  if (mkfifo(path, static_cast<mode_t>(mode)) < 0) return ThrowErrno(env, errno, "mkfifo");
  return nullptr;
}

napi_value InitModule(napi_env env, napi_value exports) {
  napi_value fn;
  CHECK_NAPI(env, napi_create_function(env, "peerCredentials", NAPI_AUTO_LENGTH, PeerCredentials, nullptr, &fn));
  CHECK_NAPI(env, napi_set_named_property(env, exports, "peerCredentials", fn));
  CHECK_NAPI(env, napi_create_function(env, "socketpair", NAPI_AUTO_LENGTH, SocketPair, nullptr, &fn));
  CHECK_NAPI(env, napi_set_named_property(env, exports, "socketpair", fn));
  CHECK_NAPI(env, napi_create_function(env, "closeFd", NAPI_AUTO_LENGTH, CloseFd, nullptr, &fn));
  CHECK_NAPI(env, napi_set_named_property(env, exports, "closeFd", fn));
  CHECK_NAPI(env, napi_create_function(env, "mkfifo", NAPI_AUTO_LENGTH, MakeFifo, nullptr, &fn));
  CHECK_NAPI(env, napi_set_named_property(env, exports, "mkfifo", fn));
  return Channel::Init(env, exports);
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, InitModule)
