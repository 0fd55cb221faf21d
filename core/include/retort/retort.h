/* Umbrella header of the retort core. */
#ifndef RETORT_H
#define RETORT_H
#include "common.h"
#include "bf16.h"
#include "tensor.h"
#include "ops.h"
#include "autograd.h"
#include "random.h"
#include "optim.h"
#include "nn_ops.h"
#include "loss.h"
#include "device.h"
#include "image.h"
#include "dist.h"
#endif
