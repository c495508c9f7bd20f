// Precompiled for every Stylize target: parsing torch's headers is most of the build.
#pragma once
#include <fmt/format.h>
#include <torch/torch.h>

#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>
