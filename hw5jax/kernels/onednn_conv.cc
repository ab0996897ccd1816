// oneDNN 2-D convolutions as XLA FFI handlers: forward, backward-data and backward-weights,
// float32, NHWC activations, HWIO kernels (hw5jax/kernels/conv.py calls them).
//
// Every handler takes two inputs and one result of rank 4 + L: L leading (vmap) dimensions,
// each either the full size or 1 (jax.ffi's vmap_method="expand_dims"), broadcast like
// NumPy. Attributes (int64): stride_h, stride_w, pad_top, pad_bottom, pad_left, pad_right;
// threads (> 0: that many OpenMP threads; 0: the cores shared among the calls in flight, so
// one call alone uses every core and two concurrent ones, from two XLA devices or threads,
// one each; set by omp_set_num_threads in the calling thread);
// layout (0: the primitives read and write nhwc / hwio directly; 1: format_tag::any, the
// layouts oneDNN prefers, with reorders around the primitive).
//
// The primitives are created once per shape (and thread count and layout) and kept in a
// static map guarded by a mutex; the scratchpad is the caller's (a thread-local buffer), so
// two XLA threads can run the same primitive at once.

#include <omp.h>

#include <array>
#include <atomic>
#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "dnnl.hpp"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

enum Kind : int64_t { kForward = 0, kBackwardData = 1, kBackwardWeights = 2 };

// kind, N, H, W, C, KH, KW, O, OH, OW, stride_h, stride_w, pads (4), threads, layout
using Key = std::array<int64_t, 18>;

dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

// One convolution of one kind and shape: the primitive, and per argument (input 0, input 1,
// output) its argument id, the user's (plain) descriptor, the primitive's descriptor and the
// reorder between the two when they differ.
struct Conv {
  dnnl::primitive primitive;
  std::array<int, 3> arg_ids;
  std::array<memory::desc, 3> user_md, prim_md;
  std::array<bool, 3> reordered{false, false, false};
  std::array<dnnl::reorder, 3> reorders;
  memory::desc scratchpad_md;
};

std::mutex cache_mutex;
std::map<Key, std::shared_ptr<Conv>>& cache() {
  static std::map<Key, std::shared_ptr<Conv>> conv_cache;
  return conv_cache;
}

std::shared_ptr<Conv> make_conv(const Key& k) {
  const int64_t kind = k[0], n = k[1], h = k[2], w = k[3], c = k[4], kh = k[5], kw = k[6],
                o = k[7], oh = k[8], ow = k[9];
  const bool any = k[17] == 1, any_weights = k[17] != 0;
  auto& eng = cpu_engine();
  const memory::desc src_user({n, c, h, w}, dt::f32, tag::nhwc);
  const memory::desc wei_user({o, c, kh, kw}, dt::f32, tag::hwio);
  const memory::desc dst_user({n, o, oh, ow}, dt::f32, tag::nhwc);
  const memory::desc src_md = any ? memory::desc({n, c, h, w}, dt::f32, tag::any) : src_user;
  const memory::desc wei_md =
      any_weights ? memory::desc({o, c, kh, kw}, dt::f32, tag::any) : wei_user;
  const memory::desc dst_md = any ? memory::desc({n, o, oh, ow}, dt::f32, tag::any) : dst_user;
  const memory::dims strides{k[10], k[11]}, pad_l{k[12], k[14]}, pad_r{k[13], k[15]};
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  const auto algo = dnnl::algorithm::convolution_direct;
  // The backward primitives need the forward one as a hint (no scratchpad attribute: never run).
  dnnl::convolution_forward::primitive_desc hint(eng, dnnl::prop_kind::forward_training, algo,
                                                 src_md, wei_md, dst_md, strides, pad_l, pad_r);
  auto conv = std::make_shared<Conv>();
  memory::desc scratchpad;
  if (kind == kForward) {
    dnnl::convolution_forward::primitive_desc pd(eng, dnnl::prop_kind::forward_training, algo,
                                                 src_md, wei_md, dst_md, strides, pad_l,
                                                 pad_r, attr);
    conv->primitive = dnnl::convolution_forward(pd);
    conv->arg_ids = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST};
    conv->user_md = {src_user, wei_user, dst_user};
    conv->prim_md = {pd.src_desc(), pd.weights_desc(), pd.dst_desc()};
    scratchpad = pd.scratchpad_desc();
  } else if (kind == kBackwardData) {
    dnnl::convolution_backward_data::primitive_desc pd(eng, algo, src_md, wei_md, dst_md,
                                                       strides, pad_l, pad_r, hint, attr);
    conv->primitive = dnnl::convolution_backward_data(pd);
    conv->arg_ids = {DNNL_ARG_DIFF_DST, DNNL_ARG_WEIGHTS, DNNL_ARG_DIFF_SRC};
    conv->user_md = {dst_user, wei_user, src_user};
    conv->prim_md = {pd.diff_dst_desc(), pd.weights_desc(), pd.diff_src_desc()};
    scratchpad = pd.scratchpad_desc();
  } else {
    dnnl::convolution_backward_weights::primitive_desc pd(eng, algo, src_md, wei_md, dst_md,
                                                          strides, pad_l, pad_r, hint, attr);
    conv->primitive = dnnl::convolution_backward_weights(pd);
    conv->arg_ids = {DNNL_ARG_SRC, DNNL_ARG_DIFF_DST, DNNL_ARG_DIFF_WEIGHTS};
    conv->user_md = {src_user, dst_user, wei_user};
    conv->prim_md = {pd.src_desc(), pd.diff_dst_desc(), pd.diff_weights_desc()};
    scratchpad = pd.scratchpad_desc();
  }
  conv->scratchpad_md = scratchpad;
  for (int i = 0; i < 3; ++i) {
    if (conv->prim_md[i] != conv->user_md[i]) {
      conv->reordered[i] = true;
      const auto& from = i < 2 ? conv->user_md[i] : conv->prim_md[i];
      const auto& to = i < 2 ? conv->prim_md[i] : conv->user_md[i];
      conv->reorders[i] = dnnl::reorder(dnnl::reorder::primitive_desc(eng, from, eng, to));
    }
  }
  return conv;
}

std::shared_ptr<Conv> get_conv(const Key& key) {
  std::lock_guard<std::mutex> lock(cache_mutex);
  auto& entries = cache();
  auto found = entries.find(key);
  if (found != entries.end()) return found->second;
  auto conv = make_conv(key);
  entries.emplace(key, conv);
  return conv;
}

// This thread's buffers: the scratchpad and the reordered copies of the three arguments.
std::vector<char>& buffer(int slot, size_t bytes) {
  thread_local std::array<std::vector<char>, 4> buffers;
  if (buffers[slot].size() < bytes) buffers[slot].resize(bytes);
  return buffers[slot];
}

void run(const Conv& conv, dnnl::stream& stream, std::array<void*, 3> data) {
  auto& eng = cpu_engine();
  std::unordered_map<int, memory> args;
  std::array<memory, 3> user;
  for (int i = 0; i < 3; ++i) {
    user[i] = memory(conv.user_md[i], eng, data[i]);
    if (conv.reordered[i]) {
      auto& copy = buffer(i + 1, conv.prim_md[i].get_size());
      memory prim(conv.prim_md[i], eng, copy.data());
      if (i < 2) conv.reorders[i].execute(stream, user[i], prim);
      args.emplace(conv.arg_ids[i], prim);
    } else {
      args.emplace(conv.arg_ids[i], user[i]);
    }
  }
  auto& scratch = buffer(0, conv.scratchpad_md.get_size());
  args.emplace(DNNL_ARG_SCRATCHPAD, memory(conv.scratchpad_md, eng, scratch.data()));
  conv.primitive.execute(stream, args);
  if (conv.reordered[2]) conv.reorders[2].execute(stream, args.at(conv.arg_ids[2]), user[2]);
  stream.wait();
}

// Strides (in floats) of a buffer's leading dimensions against the result's: 0 where the
// buffer's dimension is 1 (broadcast).
std::vector<int64_t> lead_strides(ffi::Span<const int64_t> dims, size_t lead,
                                  int64_t inner) {
  std::vector<int64_t> strides(lead);
  int64_t stride = inner;
  for (size_t i = lead; i-- > 0;) {
    strides[i] = dims[i] == 1 ? 0 : stride;
    stride *= dims[i];
  }
  return strides;
}

int64_t product(ffi::Span<const int64_t> dims, size_t from, size_t to) {
  int64_t p = 1;
  for (size_t i = from; i < to; ++i) p *= dims[i];
  return p;
}

ffi::Error conv_impl(int64_t kind, ffi::Buffer<ffi::F32> a, ffi::Buffer<ffi::F32> b,
                     ffi::ResultBuffer<ffi::F32> out, int64_t stride_h, int64_t stride_w,
                     int64_t pad_top, int64_t pad_bottom, int64_t pad_left, int64_t pad_right,
                     int64_t threads, int64_t layout) {
  const auto da = a.dimensions(), db = b.dimensions(), dout = out->dimensions();
  const size_t rank = dout.size();
  if (rank < 4 || da.size() != rank || db.size() != rank) {
    return ffi::Error::InvalidArgument("onednn conv: operands of rank 4 + the same leading dims");
  }
  const size_t lead = rank - 4;
  for (size_t i = 0; i < lead; ++i) {
    if ((da[i] != dout[i] && da[i] != 1) || (db[i] != dout[i] && db[i] != 1)) {
      return ffi::Error::InvalidArgument("onednn conv: leading dims neither full nor 1");
    }
  }
  // The NHWC activation x, the HWIO kernel k and the NHWC output y, whichever is which.
  auto x = kind == kBackwardData ? dout : da;
  auto k = kind == kForward ? db : (kind == kBackwardData ? db : dout);
  auto y = kind == kForward ? dout : (kind == kBackwardData ? da : db);
  int64_t n = x[lead], h = x[lead + 1], w = x[lead + 2], c = x[lead + 3];
  const int64_t kh = k[lead], kw = k[lead + 1], o = k[lead + 3];
  const int64_t oh = y[lead + 1], ow = y[lead + 2];
  if (k[lead + 2] != c || y[lead] != n || y[lead + 3] != o) {
    return ffi::Error::InvalidArgument("onednn conv: inconsistent NHWC / HWIO shapes");
  }
  // The calls in flight now (this one included), for threads == 0.
  static std::atomic<int> in_flight{0};
  struct Leave {
    ~Leave() { --in_flight; }
  } leave;
  const int running = ++in_flight;
  if (threads <= 0) threads = std::max(1, omp_get_num_procs() / running);
  if (omp_get_max_threads() != threads) omp_set_num_threads(static_cast<int>(threads));

  const int64_t groups = product(dout, 0, lead);
  const int64_t a_inner = product(da, lead, rank), b_inner = product(db, lead, rank),
                out_inner = product(dout, lead, rank);
  const auto sa = lead_strides(da, lead, a_inner), sb = lead_strides(db, lead, b_inner);
  // One shared kernel and every activation distinct: all groups are one batch of G * N.
  bool fold = kind != kBackwardWeights && groups > 1;
  for (size_t i = 0; i < lead && fold; ++i) fold = sb[i] == 0 && (da[i] == dout[i]);
  const int64_t per_call = fold ? groups : 1;
  n *= per_call;
  const Key key{kind,     n,       h,     w,          c,        kh,         kw,
                o,        oh,      ow,    stride_h,   stride_w, pad_top,    pad_bottom,
                pad_left, pad_right, omp_get_max_threads(), layout};
  try {
    auto conv = get_conv(key);
    thread_local dnnl::stream stream(cpu_engine());
    float* pa = a.typed_data();
    float* pb = b.typed_data();
    float* pout = out->typed_data();
    for (int64_t g = 0; g < groups / per_call; ++g) {
      int64_t oa = 0, ob = 0, rest = g;
      for (size_t i = lead; i-- > 0;) {
        const int64_t idx = rest % dout[i];
        rest /= dout[i];
        oa += idx * sa[i];
        ob += idx * sb[i];
      }
      run(*conv, stream, {pa + oa, pb + ob, pout + g * out_inner});
    }
  } catch (const dnnl::error& e) {
    return ffi::Error::Internal(std::string("onednn conv: ") + e.what());
  }
  return ffi::Error::Success();
}

#define HW5JAX_CONV_HANDLER(name, kind)                                                  \
  ffi::Error name##_impl(ffi::Buffer<ffi::F32> a, ffi::Buffer<ffi::F32> b,               \
                         ffi::ResultBuffer<ffi::F32> out, int64_t sh, int64_t sw,        \
                         int64_t pt, int64_t pb, int64_t pl, int64_t pr, int64_t threads, \
                         int64_t layout) {                                               \
    return conv_impl(kind, a, b, out, sh, sw, pt, pb, pl, pr, threads, layout);          \
  }

HW5JAX_CONV_HANDLER(forward, kForward)
HW5JAX_CONV_HANDLER(backward_data, kBackwardData)
HW5JAX_CONV_HANDLER(backward_weights, kBackwardWeights)

}  // namespace

#define HW5JAX_BIND                     \
  ffi::Ffi::Bind()                      \
      .Arg<ffi::Buffer<ffi::F32>>()     \
      .Arg<ffi::Buffer<ffi::F32>>()     \
      .Ret<ffi::Buffer<ffi::F32>>()     \
      .Attr<int64_t>("stride_h")        \
      .Attr<int64_t>("stride_w")        \
      .Attr<int64_t>("pad_top")         \
      .Attr<int64_t>("pad_bottom")      \
      .Attr<int64_t>("pad_left")        \
      .Attr<int64_t>("pad_right")       \
      .Attr<int64_t>("threads")         \
      .Attr<int64_t>("layout")

XLA_FFI_DEFINE_HANDLER_SYMBOL(Hw5jaxOnednnConvForward, forward_impl, HW5JAX_BIND);
XLA_FFI_DEFINE_HANDLER_SYMBOL(Hw5jaxOnednnConvBackwardData, backward_data_impl, HW5JAX_BIND);
XLA_FFI_DEFINE_HANDLER_SYMBOL(Hw5jaxOnednnConvBackwardWeights, backward_weights_impl,
                              HW5JAX_BIND);

// The oneDNN version this library runs, for the record: major * 10000 + minor * 100 + patch.
extern "C" int hw5jax_onednn_version() {
  const dnnl_version_t* v = dnnl_version();
  return v->major * 10000 + v->minor * 100 + v->patch;
}
