#include "train/training_group.h"

#ifdef STYLIZE_HAVE_GLOO
#define USE_C10D_GLOO 1  // ProcessGroupGloo.hpp declares its class only when told Gloo is built in
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#include <fmt/ranges.h>
#include <netdb.h>
#include <sys/socket.h>

#include <cstdlib>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include "data/error.h"
#include "train/c10d_collectives.h"

namespace stylize {
namespace {

std::optional<std::string> environment(const char* name) {
  const char* value = std::getenv(name);
  if (!value || !*value) return std::nullopt;
  return std::string(value);
}

int integerVariable(const char* name, const std::string& text, int lo, int hi) {
  size_t used = 0;
  int value = 0;
  try {
    value = std::stoi(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || value < lo || value > hi)
    throw Error(fmt::format("{}={}: must be an integer {}..{}", name, text, lo, hi));
  return value;
}

// c10::Error carries a C++ backtrace after its message: the user gets the first line.
std::string firstLine(const std::exception& e) {
  const auto* c10 = dynamic_cast<const c10::Error*>(&e);
  std::string text = c10 ? c10->what_without_backtrace() : e.what();
  return text.substr(0, text.find('\n'));
}

// Whether every address `host` resolves to is a loopback one; an Error when it does not resolve (at once,
// not after the rendezvous timeout).
bool resolvesToLoopback(const std::string& host) {
  addrinfo hints{}, *found = nullptr;
  hints.ai_socktype = SOCK_STREAM;
  if (const int status = getaddrinfo(host.c_str(), nullptr, &hints, &found); status != 0)
    throw Error(fmt::format("MASTER_ADDR={}: {}", host, gai_strerror(status)));
  bool loopback = true;
  for (addrinfo* a = found; a; a = a->ai_next) {
    if (a->ai_family == AF_INET)
      loopback &= (ntohl(reinterpret_cast<sockaddr_in*>(a->ai_addr)->sin_addr.s_addr) >> 24) == 127;
    else if (a->ai_family == AF_INET6)
      loopback &= IN6_IS_ADDR_LOOPBACK(&reinterpret_cast<sockaddr_in6*>(a->ai_addr)->sin6_addr);
  }
  freeaddrinfo(found);
  return loopback;
}

}  // namespace

struct TrainingGroup::Store {
  c10::intrusive_ptr<c10d::Store> store;
};

std::optional<Rendezvous> Rendezvous::fromEnvironment() {
  const char* names[] = {"MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE"};
  std::vector<std::string> missing;
  for (const char* name : names)
    if (!environment(name)) missing.push_back(name);
  if (missing.size() == 4) return std::nullopt;
  if (!missing.empty())
    throw Error(
        fmt::format("{} not set: a distributed run needs MASTER_ADDR, MASTER_PORT, RANK and WORLD_SIZE "
                    "(torchrun sets them; or use --nproc N on one machine)",
                    fmt::join(missing, ", ")));
  Rendezvous r;
  r.address = *environment("MASTER_ADDR");
  r.port = integerVariable("MASTER_PORT", *environment("MASTER_PORT"), 1, 65535);
  r.worldSize = integerVariable("WORLD_SIZE", *environment("WORLD_SIZE"), 1, 4096);
  r.rank = integerVariable("RANK", *environment("RANK"), 0, r.worldSize - 1);
  r.localRank = environment("LOCAL_RANK") ? integerVariable("LOCAL_RANK", *environment("LOCAL_RANK"), 0, 4095) : r.rank;
  return r;
}

std::vector<std::string> availableBackends() {
  std::vector<std::string> backends;
#ifdef STYLIZE_HAVE_GLOO
  backends.push_back("gloo");
#endif
#ifdef STYLIZE_HAVE_NCCL
  backends.push_back("nccl");
#endif
  return backends;
}

TrainingGroup::TrainingGroup(const Rendezvous& where, const std::string& backend, std::chrono::milliseconds timeout,
                             const torch::Device& device)
    : where_(where), backend_(backend), timeout_(timeout) {
  if (backend_ == "auto") backend_ = device.is_cuda() ? "nccl" : "gloo";
  if (backend_ != "gloo" && backend_ != "nccl")
    throw Error("--backend " + backend + ": not a backend (auto, gloo or nccl)");
  const std::vector<std::string> built = availableBackends();
  if (std::find(built.begin(), built.end(), backend_) == built.end())
    throw Error(fmt::format("--backend {}: this build has no {} (it has: {}){}", backend_, backend_,
                            built.empty() ? "none" : fmt::format("{}", fmt::join(built, ", ")),
                            backend_ == "gloo" ? "; install libgloo-dev and rebuild" : ""));
  if (backend_ == "nccl" && !device.is_cuda()) throw Error("--backend nccl needs --device cuda");

  [[maybe_unused]] const bool loopback = resolvesToLoopback(where_.address);
  const std::string at = fmt::format("{}:{}", where_.address, where_.port);
  // Under torchrun its agent already serves a store at MASTER_ADDR:MASTER_PORT: every rank, 0 included, is
  // a client there, under a prefix per restart attempt (as PyTorch's own env:// rendezvous does).
  const bool agentStore = environment("TORCHELASTIC_USE_AGENT_STORE") == std::optional<std::string>("True");
  c10d::TCPStoreOptions options;
  options.port = static_cast<uint16_t>(where_.port);
  options.isServer = where_.rank == 0 && !agentStore;
  options.numWorkers = static_cast<size_t>(where_.worldSize);
  options.waitWorkers = true;
  options.timeout = timeout;
  store_ = std::make_unique<Store>();
  try {
    store_->store = c10::make_intrusive<c10d::TCPStore>(where_.address, options);
    if (agentStore)
      store_->store = c10::make_intrusive<c10d::PrefixStore>(
          "/worker/attempt_" + environment("TORCHELASTIC_RESTART_COUNT").value_or("0"), store_->store);
  } catch (const std::exception& e) {
    throw Error(options.isServer
                    ? fmt::format("rank 0 cannot start the rendezvous store on port {}, or not every one of the {} "
                                  "ranks came within {} s: {}",
                                  where_.port, where_.worldSize, timeout.count() / 1000, firstLine(e))
                    : fmt::format("rank {} cannot reach the rendezvous store at {} within {} s: {}", where_.rank, at,
                                  timeout.count() / 1000, firstLine(e)));
  }
  try {
    if (backend_ == "nccl") {
      collectives_ = makeNcclCollectives(store_->store, where_.rank, where_.worldSize, timeout);
    } else {
#ifdef STYLIZE_HAVE_GLOO
      auto gloo = c10d::ProcessGroupGloo::Options::create(timeout);
      // GLOO_SOCKET_IFNAME picks the network interface as in PyTorch; a loopback rendezvous stays on loopback
      // (a container's hostname may resolve to an address nobody can reach).
      if (const auto interface = environment("GLOO_SOCKET_IFNAME"))
        gloo->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(*interface));
      else if (loopback)
        gloo->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
      else
        gloo->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      gloo->threads = 2;
      collectives_ = std::make_unique<C10dCollectives<c10d::ProcessGroupGloo>>(
          c10::make_intrusive<c10d::ProcessGroupGloo>(store_->store, where_.rank, where_.worldSize, gloo));
#endif
    }
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(fmt::format("rank {}: the {} process group failed to form: {}", where_.rank, backend_, firstLine(e)));
  }
  heartbeatThread_ = std::thread([beat = heartbeat_, store = store_->store, rank = where_.rank] {
    const std::string key = fmt::format("stylize/alive/{}", rank);
    std::unique_lock<std::mutex> lock(beat->mutex);
    while (!beat->stopping) {
      lock.unlock();
      try {
        store->add(key, 1);
      } catch (const std::exception&) {
        lock.lock();
        break;  // rank 0 and its store are gone; the next collective says so
      }
      lock.lock();
      beat->wake.wait_for(lock, std::chrono::seconds(1), [&] { return beat->stopping; });
    }
    beat->finished = true;
    beat->wake.notify_all();
  });
}

TrainingGroup::~TrainingGroup() {
  std::unique_lock<std::mutex> lock(heartbeat_->mutex);
  heartbeat_->stopping = true;
  heartbeat_->wake.notify_all();
  // A beat stuck on a frozen rank 0's store must not hold this process at exit: it is let go.
  const bool finished = heartbeat_->wake.wait_for(lock, std::chrono::seconds(2), [&] { return heartbeat_->finished; });
  lock.unlock();
  if (finished)
    heartbeatThread_.join();
  else
    heartbeatThread_.detach();
}

void TrainingGroup::broadcast(const std::vector<torch::Tensor>& tensors) {
  torch::NoGradGuard noGrad;
  std::vector<torch::Tensor> flat;
  for (const auto& t : tensors) flat.push_back(t.detach().reshape(-1));
  torch::Tensor bucket = torch::cat(flat);
  try {
    collectives_->broadcastFromRank0(bucket);
  } catch (const std::exception& e) {
    throw Error(fmt::format("rank {}: the start-up broadcast failed: {}", where_.rank, firstLine(e)));
  }
  int64_t offset = 0;
  for (const auto& t : tensors) {
    t.detach().copy_(bucket.narrow(0, offset, t.numel()).view_as(t));
    offset += t.numel();
  }
}

void TrainingGroup::averageGradients(const std::vector<torch::Tensor>& parameters, std::vector<double>& extras,
                                     int64_t step) {
  torch::NoGradGuard noGrad;
  std::vector<torch::Tensor> flat;
  for (const auto& p : parameters)
    flat.push_back(p.grad().defined() ? p.grad().reshape(-1) : torch::zeros({p.numel()}, p.options()));
  const torch::Tensor extraValues = torch::tensor(extras, torch::kFloat64);
  // One bucket in float64: the sum over ranks then rounds once, so the mean does not depend on the order
  // in which ranks' values arrive, and the extras keep their precision.
  flat.push_back(extraValues.to(parameters.front().device()));
  for (auto& f : flat) f = f.to(torch::kFloat64);
  torch::Tensor bucket = torch::cat(flat);
  try {
    // Announced before the collective, so that a rank whose collective fails can tell who never came.
    const std::string reached = std::to_string(step);
    store_->store->set(fmt::format("stylize/step/{}", where_.rank),
                       std::vector<uint8_t>(reached.begin(), reached.end()));
    collectives_->allreduceSum(bucket);
  } catch (const std::exception& e) {
    const std::string missing = missingRanks(step);
    throw Error(fmt::format("rank {}: training step {} failed{}: {}", where_.rank, step + 1,
                            missing.empty() ? "" : " because " + missing, firstLine(e)));
  }
  int64_t offset = 0;
  for (const auto& p : parameters) {
    torch::Tensor mean = bucket.narrow(0, offset, p.numel()).view(p.sizes()).div(where_.worldSize).to(p.dtype());
    if (p.grad().defined())
      p.grad().copy_(mean);
    else
      p.mutable_grad() = mean;
    offset += p.numel();
  }
  const torch::Tensor sums = bucket.narrow(0, offset, static_cast<int64_t>(extras.size())).cpu();
  for (size_t i = 0; i < extras.size(); ++i) extras[i] = sums[static_cast<int64_t>(i)].item<double>();
}

std::string TrainingGroup::missingRanks(int64_t step) {
  std::vector<int> missing;
  try {
    c10d::Store& store = *store_->store;
    store.setTimeout(std::chrono::seconds(3));
    const auto heartbeats = [&] {
      std::vector<int64_t> counts;
      for (int r = 0; r < where_.worldSize; ++r) counts.push_back(store.add(fmt::format("stylize/alive/{}", r), 0));
      return counts;
    };
    const std::vector<int64_t> before = heartbeats();
    std::this_thread::sleep_for(std::chrono::milliseconds(2500));
    const std::vector<int64_t> after = heartbeats();
    for (int r = 0; r < where_.worldSize; ++r) {
      if (r == where_.rank) continue;
      const std::string key = fmt::format("stylize/step/{}", r);
      int64_t reached = -1;
      if (store.check({key})) {
        const std::vector<uint8_t> value = store.get(key);
        reached = std::stoll(std::string(value.begin(), value.end()));
      }
      // Not at this step's collective (hung in its own work), or no longer beating (dead, stopped).
      if (reached < step || after[r] == before[r]) missing.push_back(r);
    }
  } catch (const std::exception&) {
    // The store lives in rank 0: if it does not answer, rank 0 is the one gone.
    return where_.rank == 0 ? "" : "rank 0 (which holds the rendezvous store) is gone";
  }
  if (missing.empty()) return "";
  return fmt::format("rank{} {} stopped or hung", missing.size() > 1 ? "s" : "", fmt::join(missing, ", "));
}

}  // namespace stylize
