// What the gateway needs from the host's service manager that Node cannot do itself, kept apart
// from the SOCK_SEQPACKET addon: sending sd_notify datagrams (Node has no unix datagram sockets)
// and marking descriptors inherited through socket activation close-on-exec (Node has no fcntl).
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <string>

namespace {

napi_value ThrowErrno(napi_env env, int err, const char* what) {
  std::string message = std::string(what) + ": " + strerror(err);
  napi_value code, msg, error;
  napi_create_string_utf8(env, strerrorname_np(err) ? strerrorname_np(err) : "EIO", NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, message.c_str(), NAPI_AUTO_LENGTH, &msg);
  napi_create_error(env, code, msg, &error);
  napi_throw(env, error);
  return nullptr;
}

bool StringArg(napi_env env, napi_value value, std::string* out) {
  size_t len = 0;
  if (napi_get_value_string_utf8(env, value, nullptr, 0, &len) != napi_ok) return false;
  out->resize(len + 1);
  if (napi_get_value_string_utf8(env, value, &(*out)[0], len + 1, &len) != napi_ok) return false;
  out->resize(len);
  return true;
}

// notify(socketPath, state): one datagram to $NOTIFY_SOCKET, as sd_notify(3) sends it. A path
// starting with '@' is in the abstract namespace. The sender is this process, so systemd's
// NotifyAccess=main accepts it (systemd reads the sender's pid from SCM_CREDENTIALS).
napi_value Notify(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  std::string path, state;
  if (argc < 2 || !StringArg(env, argv[0], &path) || !StringArg(env, argv[1], &state)) {
    napi_throw_type_error(env, nullptr, "notify(socketPath: string, state: string)");
    return nullptr;
  }
  sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path) || (path[0] != '/' && path[0] != '@')) {
    napi_throw_range_error(env, nullptr, "NOTIFY_SOCKET must be an absolute path or an abstract name (@...)");
    return nullptr;
  }
  memcpy(addr.sun_path, path.data(), path.size());
  if (path[0] == '@') addr.sun_path[0] = '\0';
  socklen_t len = offsetof(sockaddr_un, sun_path) + path.size();
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ThrowErrno(env, errno, "socket");
  ssize_t sent = sendto(fd, state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&addr), len);
  int err = errno;
  close(fd);
  if (sent < 0) return ThrowErrno(env, err, "sendto NOTIFY_SOCKET");
  return nullptr;
}

// setCloexec(fd): systemd passes listening sockets without FD_CLOEXEC; without it every CRIU
// worker the gateway starts would inherit them and keep the gateway's sockets open.
napi_value SetCloexec(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  int32_t fd = -1;
  if (argc < 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) {
    napi_throw_type_error(env, nullptr, "setCloexec(fd: number)");
    return nullptr;
  }
  int flags = fcntl(fd, F_GETFD);
  if (flags < 0 || fcntl(fd, F_SETFD, flags | FD_CLOEXEC) < 0) return ThrowErrno(env, errno, "fcntl");
  return nullptr;
}

napi_value InitModule(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "notify", NAPI_AUTO_LENGTH, Notify, nullptr, &fn);
  napi_set_named_property(env, exports, "notify", fn);
  napi_create_function(env, "setCloexec", NAPI_AUTO_LENGTH, SetCloexec, nullptr, &fn);
  napi_set_named_property(env, exports, "setCloexec", fn);
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, InitModule)
