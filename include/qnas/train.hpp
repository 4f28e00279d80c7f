// Training: losses (incl. distillation), optimizers, schedules, initialisation, metrics, the
// trainer with callbacks, weight clipping, and compressed activation storage with its adaptive
// policy.
#pragma once

#include "qnas/train/activation_store.hpp"
#include "qnas/train/adaptive_compression.hpp"
#include "qnas/train/callbacks.hpp"
#include "qnas/train/compressed_training.hpp"
#include "qnas/train/init.hpp"
#include "qnas/train/loss.hpp"
#include "qnas/train/lossless.hpp"
#include "qnas/train/metrics.hpp"
#include "qnas/train/optimizer.hpp"
#include "qnas/train/schedule.hpp"
#include "qnas/train/trainer.hpp"
#include "qnas/train/weight_clip.hpp"
