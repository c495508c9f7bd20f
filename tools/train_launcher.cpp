// stylize train --nproc N: N workers of this same binary on one machine, each one rank of a c10d group that
// meets on loopback, started the way torchrun starts them (MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE,
// LOCAL_RANK). The launcher only starts, signals and reaps; the workers do all the training.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstring>
#include <iostream>
#include <map>
#include <thread>

#include "data/error.h"
#include "tools/commands.h"

extern char** environ;

namespace stylize::cli {
namespace {

volatile std::sig_atomic_t gForwardSignal = 0;
void onSignal(int signal) { gForwardSignal = signal; }

// A port nobody listens on now; rank 0's store binds it a moment later (a race only with another program
// grabbing the same free port in between, which then fails with a clear error).
int freeLoopbackPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw Error(std::string("--nproc: cannot open a socket: ") + std::strerror(errno));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
                  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0;
  close(fd);
  if (!ok) throw Error(std::string("--nproc: no free loopback port: ") + std::strerror(errno));
  return ntohs(address.sin_port);
}

std::string describeExit(int status) {
  if (WIFSIGNALED(status))
    return fmt::format("was killed by signal {} ({})", WTERMSIG(status), strsignal(WTERMSIG(status)));
  return fmt::format("exited with status {}", WEXITSTATUS(status));
}

int exitCodeOf(int status) { return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status); }

}  // namespace

int launchLocalWorkers(int nproc, std::vector<std::string> workerArgs, std::chrono::seconds timeout) {
  const int port = freeLoopbackPort();
  // Environment and argv are built before fork: between fork and exec a child of a threaded process may
  // only call async-signal-safe functions.
  std::vector<std::vector<std::string>> environments(nproc);
  for (int rank = 0; rank < nproc; ++rank) {
    std::map<std::string, std::string> set{
        {"MASTER_ADDR", "127.0.0.1"},         {"MASTER_PORT", std::to_string(port)},
        {"RANK", std::to_string(rank)},       {"WORLD_SIZE", std::to_string(nproc)},
        {"LOCAL_RANK", std::to_string(rank)}, {"LOCAL_WORLD_SIZE", std::to_string(nproc)}};
    for (char** e = environ; *e; ++e) {
      const std::string entry = *e;
      if (!set.count(entry.substr(0, entry.find('=')))) environments[rank].push_back(entry);
    }
    for (const auto& [name, value] : set) environments[rank].push_back(name + "=" + value);
  }
  workerArgs.insert(workerArgs.begin(), "stylize");
  std::vector<char*> argv;
  for (auto& a : workerArgs) argv.push_back(a.data());
  argv.push_back(nullptr);

  struct sigaction action {};
  action.sa_handler = onSignal;  // no SA_RESTART: a signal wakes the reaping loop
  sigemptyset(&action.sa_mask);
  struct sigaction oldInt {
  }, oldTerm{};
  sigaction(SIGINT, &action, &oldInt);
  sigaction(SIGTERM, &action, &oldTerm);

  std::map<pid_t, int> running;  // pid → rank
  for (int rank = 0; rank < nproc; ++rank) {
    std::vector<char*> envp;
    for (auto& e : environments[rank]) envp.push_back(e.data());
    envp.push_back(nullptr);
    const pid_t launcher = getpid();
    const pid_t pid = fork();
    if (pid == 0) {
      sigaction(SIGINT, &oldInt, nullptr);
      sigaction(SIGTERM, &oldTerm, nullptr);
      // A process group of its own: Ctrl-C reaches the launcher alone, which passes it on once (a second
      // SIGINT makes a worker quit without its checkpoint). If the launcher dies, the worker is told to stop.
      setpgid(0, 0);
      prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (getppid() != launcher) _exit(130);
      execve("/proc/self/exe", argv.data(), envp.data());
      _exit(127);
    }
    if (pid < 0) {
      for (const auto& [p, r] : running) kill(p, SIGKILL);
      throw Error(std::string("--nproc: cannot start a worker: ") + std::strerror(errno));
    }
    running[pid] = rank;
  }
  std::cerr << fmt::format("stylize: {} workers on 127.0.0.1:{} (ranks 0..{}), progress from rank 0\n", nproc, port,
                           nproc - 1);

  int exitCode = 0;
  bool failed = false;
  std::chrono::steady_clock::time_point killAt{};
  while (!running.empty()) {
    if (const int signal = gForwardSignal) {
      gForwardSignal = 0;
      for (const auto& [pid, rank] : running) kill(pid, signal);
    }
    int status = 0;
    const pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid <= 0) {
      // After a failure the others end on their own once their collective fails (at most --timeout later);
      // a worker that still has not ended then is hung, and is killed.
      if (failed && std::chrono::steady_clock::now() > killAt) {
        for (const auto& [p, rank] : running) {
          std::cerr << fmt::format("stylize: rank {} did not end after the group failed: killed\n", rank);
          kill(p, SIGKILL);
        }
        killAt = std::chrono::steady_clock::now() + std::chrono::hours(1);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      continue;
    }
    const int rank = running[pid];
    running.erase(pid);
    const int code = exitCodeOf(status);
    if (WIFSIGNALED(status) && !failed)
      std::cerr << fmt::format("stylize: rank {} (pid {}) {}\n", rank, pid, describeExit(status));
    if (code != 0 && code != 130 && !failed) {
      failed = true;
      exitCode = code;
      killAt = std::chrono::steady_clock::now() + timeout + std::chrono::seconds(10);
    } else if (code != 0 && exitCode == 0) {
      exitCode = code;
    }
  }
  sigaction(SIGINT, &oldInt, nullptr);
  sigaction(SIGTERM, &oldTerm, nullptr);
  return exitCode;
}

}  // namespace stylize::cli
