// Precompiled for every Stylize target: parsing torch's headers is most of the build.
#pragma once
#include <fmt/format.h>
#include <fmt/ranges.h>  // fmt::join (moved out of format.h in fmt 11, the version PyTorch 2.x bundles)
#include <torch/torch.h>

#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>
