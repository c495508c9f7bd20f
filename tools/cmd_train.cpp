// stylize train: a feed-forward style model from one painting and a folder of photos.
#include <torch/torch.h>

#include <fstream>
#include <iostream>
#include <opencv2/imgproc.hpp>
#include <optional>
#include <thread>

#include "data/error.h"
#include "data/files.h"
#include "data/image.h"
#include "nets/style_model.h"
#include "tools/cli.h"
#include "tools/commands.h"
#include "train/trainer.h"
#include "train/training_group.h"

namespace fs = std::filesystem;

namespace stylize::cli {
namespace {

constexpr double kTrainingStyleWeight = 1.0;

fs::path sibling(const fs::path& output, const std::string& suffix) {
  return output.parent_path() / (output.stem().string() + suffix);
}

// Content on top, stylized below: what a user checks at a glance during a long run.
torch::Tensor validationGrid(TransformerNet& net, const std::vector<torch::Tensor>& photos,
                             const torch::Device& device) {
  torch::NoGradGuard noGrad;
  net->eval();
  std::vector<torch::Tensor> top, bottom;
  for (const auto& photo : photos) {
    top.push_back(photo);
    bottom.push_back(net->forward(photo.unsqueeze(0).to(device)).squeeze(0).clamp(0, 1).to(torch::kCPU));
  }
  net->train();
  return torch::cat({torch::cat(top, 2), torch::cat(bottom, 2)}, 1);
}

// Total loss against iteration on a log scale, drawn with OpenCV: no plotting dependency.
torch::Tensor lossCurve(const std::vector<std::pair<int64_t, double>>& points) {
  const int width = 640, height = 360, margin = 40;
  cv::Mat canvas(height, width, CV_8UC3, cv::Scalar(255, 255, 255));
  double lo = 1e300, hi = -1e300;
  for (const auto& [it, loss] : points) {
    lo = std::min(lo, std::log10(std::max(loss, 1e-12)));
    hi = std::max(hi, std::log10(std::max(loss, 1e-12)));
  }
  if (hi - lo < 1e-6) hi = lo + 1;
  const double last = static_cast<double>(std::max<int64_t>(1, points.back().first));
  std::vector<cv::Point> line;
  for (const auto& [it, loss] : points)
    line.emplace_back(
        margin + static_cast<int>((width - 2 * margin) * it / last),
        height - margin -
            static_cast<int>((height - 2 * margin) * (std::log10(std::max(loss, 1e-12)) - lo) / (hi - lo)));
  cv::rectangle(canvas, {margin, margin}, {width - margin, height - margin}, cv::Scalar(200, 200, 200));
  cv::polylines(canvas, line, false, cv::Scalar(180, 80, 20), 2, cv::LINE_AA);
  auto label = [&](const std::string& text, cv::Point at) {
    cv::putText(canvas, text, at, cv::FONT_HERSHEY_SIMPLEX, 0.45, cv::Scalar(40, 40, 40), 1, cv::LINE_AA);
  };
  label(fmt::format("total loss {:.3g}", std::pow(10, hi)), {margin + 4, margin - 8});
  label(fmt::format("{:.3g}", std::pow(10, lo)), {margin + 4, height - margin - 6});
  label(fmt::format("iteration {}", points.back().first), {width - margin - 120, height - 14});
  torch::Tensor hwc = torch::from_blob(canvas.data, {height, width, 3}, torch::kUInt8);
  return hwc.permute({2, 0, 1}).flip({0}).to(torch::kFloat32).div(255);  // BGR → RGB
}

// A run killed after its last checkpoint logged iterations that the resumed run repeats: drop those rows,
// so the log has each iteration once, as an uninterrupted run's would.
void keepLogRowsUpTo(const fs::path& csvPath, int64_t iteration) {
  std::ifstream in(csvPath);
  if (!in) return;
  std::string kept;
  for (std::string line; std::getline(in, line);) {
    const bool row = !line.empty() && std::isdigit(static_cast<unsigned char>(line[0]));
    if (!row || std::stoll(line) <= iteration) kept += line + "\n";
  }
  writeFileAtomically(csvPath, kept);
}

}  // namespace

int runTrain(int argc, char** argv) {
  cxxopts::Options options(
      "stylize train",
      "Train a feed-forward style model (Johnson et al. 2016) on a folder of photos, once per painting.\n"
      "  stylize train --style starry_night.jpg --dataset photos/ -o starry.safetensors\n"
      "  stylize train --style wave.jpg --dataset photos/ -o wave.safetensors --width 16 --blocks 3 --iterations 4000\n"
      "  stylize train --style wave.jpg --dataset photos/ -o wave_live.safetensors --architecture compact   for live "
      "video\n"
      "  stylize train ... --resume starry.ckpt.safetensors     continue an interrupted run exactly\n"
      "  stylize train ... --nproc 2                          data-parallel over 2 local processes (c10d Gloo)\n"
      "  torchrun --nnodes 2 --nproc-per-node 1 ... stylize train ...   across machines (see README, Scaling out)\n"
      "Ctrl-C writes a checkpoint and exits; run the same command with --resume to continue.\n");
  // clang-format off
  options.add_options()
      ("style", "the painting", cxxopts::value<std::string>())
      ("dataset", "folder of training photos (searched recursively; .jpg .png .webp)", cxxopts::value<std::string>())
      ("o,output", "model file (.safetensors)", cxxopts::value<std::string>())
      ("iterations", "training iterations (batches)", cxxopts::value<int64_t>()->default_value("40000"))
      ("epochs", "alternatively, passes over the dataset (overrides --iterations)", cxxopts::value<double>())
      ("batch-size", "photos per batch", cxxopts::value<int64_t>()->default_value("4"))
      ("image-size", "training crop size", cxxopts::value<int64_t>()->default_value("256"))
      ("crop-area", "smallest random crop, as a fraction of the photo's area (0.34-1 by default); smaller = zoomed-in crops, for a model that will stylize frames much larger than the training photos (HD video, big photos)", cxxopts::value<double>()->default_value("0.34"))
      ("style-size", "long side of the style image", cxxopts::value<int64_t>()->default_value("512"))
      ("lr", "Adam learning rate", cxxopts::value<double>()->default_value("0.001"))
      ("lr-final", "learning rate at the end as a fraction of --lr (cosine decay; 1 = constant)", cxxopts::value<double>()->default_value("0.1"))
      ("architecture", "johnson (Johnson et al.'s network) or compact (7x less work per pixel, for live video on a CPU)", cxxopts::value<std::string>()->default_value("johnson"))
      ("width", "channels of the first layer (default: johnson 32, 16 for a fast CPU model; compact 8)", cxxopts::value<int64_t>())
      ("blocks", "residual blocks (default: johnson 5, compact 3)", cxxopts::value<int64_t>())
      ("input-denoise", "put an edge-preserving (bilateral) denoiser of this colour sigma in front of the network, part of the model: noise below it no longer makes the strokes flicker, so a video model keeps more of them (0 = none; the README's Flicker section tried 0.02-0.05)", cxxopts::value<double>())
      ("checkpoint", "checkpoint file (default: OUTPUT stem + .ckpt.safetensors)", cxxopts::value<std::string>())
      ("checkpoint-every", "iterations between checkpoints", cxxopts::value<int64_t>()->default_value("1000"))
      ("resume", "continue from this checkpoint exactly (its network; give the other flags as in the first run)", cxxopts::value<std::string>())
      ("log-every", "iterations between CSV log rows, validation grid and loss curve", cxxopts::value<int64_t>()->default_value("100"))
      ("validation", "held-out photos taken from the dataset for the validation grid", cxxopts::value<int>()->default_value("4"))
      ("fp16", "store the model in half precision (half the size)")
      ("temporal-weight", "temporal consistency: stylize(move(x)) should equal move(stylize(x)) for random small motions (0 = off; try 20)", cxxopts::value<double>()->default_value("0"))
      ("temporal-noise", "noise std added to the moved copy (robustness to sensor/codec noise)", cxxopts::value<double>()->default_value("0.02"))
      ("temporal-jpeg", "JPEG-compress the moved copy at a random quality Q..95, like a codec requantising each frame (0 = off; try 50)", cxxopts::value<int>()->default_value("0"))
      ("saturation-weight", "penalty on output pixels pushed into the tanh's flat tails (|pre-activation| > 2.5): without it a patch that saturates once gets no gradient and stays a flat black or white blob (0 = off)", cxxopts::value<double>()->default_value("10"))
      ("temporal-motion", "the moves: shift (whole pixels: exact, keeps fine texture), subpixel (any fraction of a pixel by Fourier shift: as sharp, and also steadies slow motion) or affine (sub-pixel shift, zoom, rotation; bilinear, blurs)", cxxopts::value<std::string>()->default_value("shift"))
      ("nproc", "train with N local worker processes, data-parallel: --batch-size is split over them and the result equals one process (several machines: torchrun/srun set MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE)", cxxopts::value<int>()->default_value("1"))
      ("backend", "distributed collectives: auto (NCCL on CUDA, else Gloo), gloo or nccl", cxxopts::value<std::string>()->default_value("auto"))
      ("timeout", "seconds a distributed rank waits for the others (start-up, each step) before stopping with an error that names the missing ranks", cxxopts::value<int>()->default_value("300"))
      ("init-model", "start from this trained model's weights and architecture (fine-tuning, e.g. with --temporal-weight; with a larger --blocks the added residual blocks start as the identity)", cxxopts::value<std::string>());
  // clang-format on
  addLossOptions(options);
  addVggOptions(options);
  addComputeOptions(options);
  auto args = parse(options, argc, argv);
  for (const char* required : {"style", "dataset", "output"})
    if (!args.count(required)) throw Error(std::string("stylize train: --") + required + " is required (see --help)");

  const fs::path output = args["output"].as<std::string>();
  if (output.extension() != ".safetensors") throw Error(output.string() + ": the model file must end in .safetensors");
  checkWritable(output);
  const fs::path checkpoint =
      args.count("checkpoint") ? fs::path(args["checkpoint"].as<std::string>()) : sibling(output, ".ckpt.safetensors");
  checkWritable(checkpoint);
  {
    std::vector<fs::path> inputs{args["style"].as<std::string>()};
    if (args.count("init-model")) inputs.push_back(args["init-model"].as<std::string>());
    checkNotAnInput(output, inputs);
    inputs.push_back(output);
    checkNotAnInput(checkpoint, inputs);
  }

  const int nproc = args["nproc"].as<int>();
  const int timeoutSeconds = args["timeout"].as<int>();
  if (nproc < 1 || nproc > 256) throw Error("--nproc must be 1..256");
  if (timeoutSeconds < 1) throw Error("--timeout must be at least 1 second");
  std::optional<Rendezvous> rendezvous = Rendezvous::fromEnvironment();
  ImageFolder photos(args["dataset"].as<std::string>());
  std::vector<torch::Tensor> validation;
  const bool drawsValidation = nproc == 1 && (!rendezvous || rendezvous->rank == 0);
  for (const auto& file : photos.holdOut(static_cast<size_t>(std::max(0, args["validation"].as<int>())))) {
    if (!drawsValidation) continue;
    try {
      const torch::Tensor image = loadImage(file);
      const int64_t side = std::min(image.size(1), image.size(2));
      using torch::indexing::Slice;
      validation.push_back(resizeImage(image.index({Slice(), Slice(0, side), Slice(0, side)}), 192, 192));
    } catch (const Error& e) {
      std::cerr << "stylize: warning: validation photo skipped: " << e.what() << "\n";
    }
  }

  const std::string stylePath = args["style"].as<std::string>();
  const StyleImages style = loadStyleImages({stylePath}, args["style-size"].as<int64_t>());
  if (nproc > 1) {
    if (rendezvous)
      throw Error("--nproc with RANK/WORLD_SIZE set: either a launcher (torchrun, srun) starts the workers or --nproc");
    if (args["batch-size"].as<int64_t>() % nproc != 0)
      throw Error(fmt::format("--batch-size {} does not split evenly over --nproc {}", args["batch-size"].as<int64_t>(),
                              nproc));
    // The workers run this command without --nproc; unless told, they share the cores evenly.
    std::vector<std::string> workerArgs;
    for (int i = 0; i < argc; ++i) {
      const std::string a = argv[i];
      if (a == "--nproc") {
        ++i;
      } else if (a.rfind("--nproc=", 0) != 0) {
        workerArgs.push_back(a);
      }
    }
    if (!args.count("threads"))
      workerArgs.insert(workerArgs.end(),
                        {"--threads", std::to_string(std::max(1u, std::thread::hardware_concurrency() / nproc))});
    // What the workers would all fail on, said once.
    findVggWeights(args);
    if (args.count("resume")) Trainer::checkpointArchitecture(args["resume"].as<std::string>());
    return launchLocalWorkers(nproc, workerArgs, std::chrono::seconds(timeoutSeconds));
  }
  if (rendezvous && rendezvous->worldSize == 1) rendezvous.reset();

  torch::Device device = applyComputeOptions(args);
  // torchrun starts one process per GPU: each takes its LOCAL_RANK's device.
  if (rendezvous && device.is_cuda() && !device.has_index())
    device = torch::Device(torch::kCUDA, static_cast<torch::DeviceIndex>(rendezvous->localRank));
  std::optional<TrainingGroup> group;
  if (rendezvous)
    group.emplace(*rendezvous, args["backend"].as<std::string>(), std::chrono::seconds(timeoutSeconds), device);
  const bool leader = !group || group->rank() == 0;  // writes the log, checkpoints and the model
  const Vgg19 vgg = loadLossNetwork(args, device);
  LossConfig lossConfig = lossConfigFromArgs(args, vgg);
  // A feed-forward network starts from noise, not from the content as the optimizer does: with the
  // optimizer's style weight (10) the style term swamps the content in training. 3 still washed out the
  // content of the validation photos; 1 (the bundled models) keeps it while carrying the palette and strokes.
  if (!args.count("style-weight")) lossConfig.styleWeight = kTrainingStyleWeight;
  PerceptualLoss loss(vgg, lossConfig);
  loss.setStyle(style.images, style.blend);

  TrainOptions opt;
  // A fine-tune (--init-model) keeps the model's architecture unless told otherwise.
  std::optional<StyleModel> start;
  if (args.count("init-model") && !args.count("resume")) start = loadStyleModel(args["init-model"].as<std::string>());
  if (start && !args.count("architecture")) opt.architecture = start->net->config();
  if (args.count("architecture") || !start) {
    opt.architecture = TransformerConfig::defaults(parseArchitecture(args["architecture"].as<std::string>()));
    if (opt.architecture.type == Architecture::kPyTorchExamples)
      throw Error(
          "--architecture pytorch_examples is for imported models (unbounded output, no tanh): fine-tune "
          "one with --init-model IMPORTED.safetensors, or train johnson or compact");
  }
  // A resumed run is the checkpoint's network unless told otherwise (then resume() checks they agree).
  if (args.count("resume") && !args.count("architecture"))
    opt.architecture = Trainer::checkpointArchitecture(args["resume"].as<std::string>());
  if (args.count("width")) opt.architecture.width = args["width"].as<int64_t>();
  if (args.count("blocks")) opt.architecture.blocks = args["blocks"].as<int64_t>();
  if (args.count("input-denoise")) {
    opt.architecture.denoise = args["input-denoise"].as<double>();
    if (!(opt.architecture.denoise >= 0 && opt.architecture.denoise <= 1))
      throw Error("--input-denoise must be 0..1 (a colour difference; 0 = none)");
  }
  opt.batches.batchSize = args["batch-size"].as<int64_t>();
  opt.batches.imageSize = args["image-size"].as<int64_t>();
  opt.batches.seed = args["seed"].as<uint64_t>();
  opt.batches.minCropArea = args["crop-area"].as<double>();
  if (!(opt.batches.minCropArea > 0 && opt.batches.minCropArea <= 1)) throw Error("--crop-area must be in (0, 1]");
  opt.iterations = args["iterations"].as<int64_t>();
  if (args.count("epochs"))
    opt.iterations = std::max<int64_t>(
        1,
        std::llround(args["epochs"].as<double>() * static_cast<double>(photos.files().size()) / opt.batches.batchSize));
  opt.learningRate = args["lr"].as<double>();
  opt.finalLearningRate = args["lr-final"].as<double>();
  opt.checkpointEvery = args["checkpoint-every"].as<int64_t>();
  opt.checkpoint = checkpoint;
  opt.temporalWeight = args["temporal-weight"].as<double>();
  opt.temporalNoise = args["temporal-noise"].as<double>();
  if (!(opt.temporalWeight >= 0)) throw Error("--temporal-weight must be 0 or more");
  if (!(opt.temporalNoise >= 0 && opt.temporalNoise <= 1)) throw Error("--temporal-noise must be 0..1");
  opt.temporalJpeg = args["temporal-jpeg"].as<int>();
  if (opt.temporalJpeg < 0 || opt.temporalJpeg > 95) throw Error("--temporal-jpeg must be 0..95");
  const std::string motion = args["temporal-motion"].as<std::string>();
  if (motion == "shift")
    opt.temporalMotion.kind = MotionKind::kShift;
  else if (motion == "subpixel")
    opt.temporalMotion.kind = MotionKind::kSubpixel;
  else if (motion == "affine")
    opt.temporalMotion.kind = MotionKind::kAffine;
  else
    throw Error("--temporal-motion must be shift, subpixel or affine, not '" + motion + "'");
  opt.saturationWeight = args["saturation-weight"].as<double>();
  if (!(opt.saturationWeight >= 0)) throw Error("--saturation-weight must be 0 or more");
  const int64_t logEvery = std::max<int64_t>(1, args["log-every"].as<int64_t>());

  const std::string styleBytes = readFile(stylePath);
  nlohmann::json info = {{"style",
                          {{"file", fs::path(stylePath).filename().string()},
                           {"fingerprint", fingerprint(styleBytes)},
                           {"size", args["style-size"].as<int64_t>()}}},
                         {"loss",
                          {{"description", describeLossConfig(loss.config())},
                           {"vgg", vgg.loadedRange()},
                           {"vgg_fingerprint", vgg.fingerprint()}}},
                         {"training",
                          {{"dataset", photos.root().string()},
                           {"photos", photos.files().size()},
                           {"iterations", opt.iterations},
                           {"batch_size", opt.batches.batchSize},
                           {"image_size", opt.batches.imageSize},
                           {"crop_area", opt.batches.minCropArea},
                           {"lr", opt.learningRate},
                           {"lr_final", opt.finalLearningRate},
                           {"temporal_weight", opt.temporalWeight},
                           {"temporal_noise", opt.temporalNoise},
                           {"temporal_jpeg", opt.temporalJpeg},
                           {"temporal_motion", motion},
                           {"saturation_weight", opt.saturationWeight},
                           {"seed", opt.batches.seed}}}};
  if (group) info["training"]["ranks"] = group->size();

  if (args.count("init-model"))
    info["training"]["init_model"] = fs::path(args["init-model"].as<std::string>()).filename();
  Trainer trainer(loss, opt, info);
  if (start) trainer.initFrom(start->net);
  if (args.count("resume")) {
    trainer.resume(args["resume"].as<std::string>());
    if (leader) std::cerr << "stylize: resumed at iteration " << trainer.iteration() << "\n";
  }
  if (group) trainer.joinGroup(*group);
  if (!leader) {
    // The other ranks train their shards quietly; rank 0 reports and writes.
    const StopSignal stop;
    const bool finished = trainer.run(photos, nullptr, stop.flag());
    return finished ? 0 : 130;
  }
  std::cerr << "stylize: training " << opt.architecture.width << "-wide, " << opt.architecture.blocks << "-block "
            << architectureName(opt.architecture.type) << " network"
            << (opt.architecture.denoise > 0
                    ? fmt::format(" behind a bilateral denoiser (σ {})", opt.architecture.denoise)
                    : "")
            << " on " << photos.files().size() << " photos, " << opt.iterations << " iterations of "
            << opt.batches.batchSize << "×" << opt.batches.imageSize << "² ("
            << std::lround(opt.batches.minCropArea * 100) << "–100 % crops), " << torch::get_num_threads()
            << " threads on " << device
            << (group ? fmt::format(", rank 0 of {} ({}; {} per rank)", group->size(), group->backend(),
                                    opt.batches.batchSize / group->size())
                      : "")
            << "\n"
            << "stylize: loss " << describeLossConfig(loss.config())
            << (opt.temporalWeight > 0
                    ? fmt::format(", temporal ×{:g} ({} motion, noise {:g}, JPEG {})", opt.temporalWeight, motion,
                                  opt.temporalNoise,
                                  opt.temporalJpeg > 0 ? fmt::format("{}..95", opt.temporalJpeg) : "off")
                    : "")
            << "\n";

  const fs::path csvPath = sibling(output, ".log.csv");
  if (trainer.iteration() > 0) keepLogRowsUpTo(csvPath, trainer.iteration());
  std::ofstream csv(csvPath, trainer.iteration() > 0 ? std::ios::app : std::ios::trunc);
  if (trainer.iteration() == 0) csv << "iteration,content,style,tv,temporal,total,lr,seconds\n";
  std::vector<std::pair<int64_t, double>> curve;
  ProgressBar bar(opt.iterations, "it");
  bar.resumeAt(trainer.iteration());
  LossValues sum;  // since the last log row
  int64_t count = 0;

  std::optional<StopSignal> stop(std::in_place);
  const bool finished = trainer.run(
      photos,
      [&](const TrainProgress& p) {
        sum += p.loss;
        ++count;
        bar.update(p.iteration,
                   describeLoss(p.loss) + (p.skippedPhotos ? fmt::format(" skipped {}", p.skippedPhotos) : ""));
        if (p.iteration % logEvery == 0 || p.iteration == p.iterations) {
          const double seconds = trainer.elapsedSeconds();
          const LossValues mean = sum / static_cast<double>(count);
          csv << fmt::format("{},{:.6g},{:.6g},{:.6g},{:.6g},{:.6g},{:.6g},{:.3f}\n", p.iteration, mean.content,
                             mean.style, mean.tv, mean.temporal, mean.total, p.learningRate, seconds)
              << std::flush;
          curve.emplace_back(p.iteration, mean.total);
          sum = {};
          count = 0;
          if (!validation.empty())
            saveImage(sibling(output, ".validation.png"), validationGrid(trainer.net(), validation, device));
          if (curve.size() >= 2) saveImage(sibling(output, ".loss.png"), lossCurve(curve));
        }
      },
      stop->flag());
  stop.reset();
  if (!finished) {
    std::cerr << "\nstylize: interrupted at iteration " << trainer.iteration() << "; checkpoint " << checkpoint.string()
              << "\nstylize: continue with the same command plus --resume " << checkpoint.string() << "\n";
    return 130;
  }
  bar.finish();
  info["iterations"] = trainer.iteration();
  info["seconds"] = trainer.elapsedSeconds();
  saveStyleModel(output, trainer.net(), info, args.count("fp16") > 0);
  std::cerr << "stylize: wrote " << output.string() << " (log " << csvPath.string() << ")\n";
  return 0;
}

}  // namespace stylize::cli
