// torch binding of the EFD kernels: checks tensors, allocates outputs, calls the raw-pointer
// launchers of efd_kernels.h on the tensors' device and current stream. Uses only
// device-generic c10 APIs, so this file needs no CUDA headers.
#include <torch/extension.h>

#include <c10/core/DeviceGuard.h>
#include <c10/core/impl/DeviceGuardImplInterface.h>

#include <optional>
#include <string>
#include <tuple>

#include "efd_kernels.h"

namespace {

void check(const torch::Tensor& t, const char* name, c10::ScalarType dtype, int64_t dim) {
  TORCH_CHECK(t.is_cuda(), name, " must be a CUDA tensor, got device ", t.device());
  TORCH_CHECK(t.scalar_type() == dtype, name, " must be ", c10::toString(dtype), ", got ",
              t.scalar_type());
  TORCH_CHECK(t.dim() == dim, name, " must have ", dim, " dimensions, got shape ", t.sizes());
  TORCH_CHECK(t.is_contiguous(), name, " must be contiguous");
}

void same_device(const torch::Tensor& a, const torch::Tensor& b, const char* name) {
  TORCH_CHECK(a.device() == b.device(), name, " is on ", b.device(), ", expected ", a.device());
}

void* current_stream(const torch::Tensor& t) {
  const auto* impl = c10::impl::getDeviceGuardImpl(c10::DeviceType::CUDA);
  return impl->getStream(t.device()).native_handle();
}

void raise_if(const char* err) { TORCH_CHECK(err == nullptr, "dwn_hw CUDA kernel: ", err); }

int lut_bits(const torch::Tensor& mapping, const torch::Tensor& luts) {
  const int64_t n = mapping.size(1);
  TORCH_CHECK(n >= 1 && n <= dwn_cuda::kMaxN, "mapping must have 1..", dwn_cuda::kMaxN,
              " columns, got ", n);
  TORCH_CHECK(luts.size(0) == mapping.size(0) && luts.size(1) == (int64_t{1} << n),
              "luts must have shape [", mapping.size(0), ", ", int64_t{1} << n, "], got ",
              luts.sizes());
  return static_cast<int>(n);
}

// Returns (out float [B, N], addr int32 [B, N]).
std::tuple<torch::Tensor, torch::Tensor> forward(const torch::Tensor& x,
                                                 const torch::Tensor& mapping,
                                                 const torch::Tensor& luts) {
  check(x, "x", torch::kFloat32, 2);
  check(mapping, "mapping", torch::kInt32, 2);
  check(luts, "luts", torch::kFloat32, 2);
  const int n = lut_bits(mapping, luts);
  same_device(x, mapping, "mapping");
  same_device(x, luts, "luts");
  c10::DeviceGuard guard(x.device());
  const int64_t batch = x.size(0), num_luts = mapping.size(0);
  auto out = torch::empty({batch, num_luts}, x.options());
  auto addr = torch::empty({batch, num_luts}, x.options().dtype(torch::kInt32));
  raise_if(dwn_cuda::efd_forward(x.data_ptr<float>(), mapping.data_ptr<int32_t>(),
                                 luts.data_ptr<float>(), out.data_ptr<float>(),
                                 addr.data_ptr<int32_t>(), batch, x.size(1), num_luts, n,
                                 current_stream(x)));
  return {out, addr};
}

// Returns float [N, n, 2^(n-1)].
torch::Tensor coefficients(const torch::Tensor& luts, int64_t n, double alpha, double beta) {
  check(luts, "luts", torch::kFloat32, 2);
  TORCH_CHECK(n >= 1 && n <= dwn_cuda::kMaxN && luts.size(1) == (int64_t{1} << n),
              "luts must have 2^n columns with 1 <= n <= ", dwn_cuda::kMaxN, ", got n=", n,
              " and shape ", luts.sizes());
  c10::DeviceGuard guard(luts.device());
  auto coef = torch::empty({luts.size(0), n, int64_t{1} << (n - 1)}, luts.options());
  raise_if(dwn_cuda::efd_coefficients(luts.data_ptr<float>(), coef.data_ptr<float>(),
                                      luts.size(0), static_cast<int>(n),
                                      static_cast<float>(alpha), static_cast<float>(beta),
                                      current_stream(luts)));
  return coef;
}

// Returns (grad_x float [B, input_size] or None, grad_luts float [N, 2^n]).
std::tuple<std::optional<torch::Tensor>, torch::Tensor> backward(
    const torch::Tensor& grad_out, const torch::Tensor& addr, const torch::Tensor& mapping,
    const torch::Tensor& luts, double alpha, double beta, int64_t input_size, bool x_needs_grad,
    bool identity_mapping, int64_t algo, const std::optional<torch::Tensor>& inv_offsets,
    const std::optional<torch::Tensor>& inv_slots) {
  check(grad_out, "grad_out", torch::kFloat32, 2);
  check(addr, "addr", torch::kInt32, 2);
  check(mapping, "mapping", torch::kInt32, 2);
  check(luts, "luts", torch::kFloat32, 2);
  const int n = lut_bits(mapping, luts);
  TORCH_CHECK(grad_out.sizes() == addr.sizes() && grad_out.size(1) == mapping.size(0),
              "grad_out ", grad_out.sizes(), " and addr ", addr.sizes(), " must both be [batch, ",
              mapping.size(0), "]");
  TORCH_CHECK(input_size > 0, "input_size must be positive, got ", input_size);
  same_device(grad_out, addr, "addr");
  same_device(grad_out, mapping, "mapping");
  same_device(grad_out, luts, "luts");
  c10::DeviceGuard guard(grad_out.device());
  const int64_t batch = grad_out.size(0), num_luts = mapping.size(0);
  // the launcher zero-fills what needs it
  auto grad_luts = torch::empty({num_luts, int64_t{1} << n}, grad_out.options());
  TORCH_CHECK(algo == dwn_cuda::kBackwardAtomic || algo == dwn_cuda::kBackwardGather,
              "algo must be ", dwn_cuda::kBackwardAtomic, " (atomic) or ", dwn_cuda::kBackwardGather,
              " (gather), got ", algo);
  std::optional<torch::Tensor> grad_x;
  torch::Tensor scratch, terms;
  const int32_t* offsets_ptr = nullptr;
  const int32_t* slots_ptr = nullptr;
  if (x_needs_grad) {
    grad_x = torch::empty({batch, input_size}, grad_out.options());
    if (n > dwn_cuda::kFusedMaxN)
      scratch = torch::empty({num_luts, n, int64_t{1} << (n - 1)}, grad_out.options());
    const bool gather = algo == dwn_cuda::kBackwardGather && n <= dwn_cuda::kFusedMaxN &&
                        !(identity_mapping && input_size == num_luts * n);
    if (gather) {
      TORCH_CHECK(inv_offsets.has_value() && inv_slots.has_value(),
                  "the gather algo needs inv_offsets and inv_slots for a non-identity mapping");
      check(*inv_offsets, "inv_offsets", torch::kInt32, 1);
      check(*inv_slots, "inv_slots", torch::kInt32, 1);
      TORCH_CHECK(inv_offsets->size(0) == input_size + 1, "inv_offsets must have ", input_size + 1,
                  " entries, got ", inv_offsets->size(0));
      TORCH_CHECK(inv_slots->size(0) == num_luts * n, "inv_slots must have ", num_luts * n,
                  " entries, got ", inv_slots->size(0));
      same_device(grad_out, *inv_offsets, "inv_offsets");
      same_device(grad_out, *inv_slots, "inv_slots");
      terms = torch::empty({batch, num_luts * n}, grad_out.options());
      offsets_ptr = inv_offsets->data_ptr<int32_t>();
      slots_ptr = inv_slots->data_ptr<int32_t>();
    }
  }
  raise_if(dwn_cuda::efd_backward(
      grad_out.data_ptr<float>(), addr.data_ptr<int32_t>(), mapping.data_ptr<int32_t>(),
      luts.data_ptr<float>(), static_cast<float>(alpha), static_cast<float>(beta),
      grad_x ? grad_x->data_ptr<float>() : nullptr, grad_luts.data_ptr<float>(),
      scratch.defined() ? scratch.data_ptr<float>() : nullptr, batch, input_size, num_luts, n,
      identity_mapping ? 1 : 0, static_cast<int>(algo),
      terms.defined() ? terms.data_ptr<float>() : nullptr, offsets_ptr, slots_ptr,
      current_stream(grad_out)));
  return {grad_x, grad_luts};
}

torch::Tensor baseline_forward(const torch::Tensor& x, const torch::Tensor& mapping,
                               const torch::Tensor& luts) {
  check(x, "x", torch::kFloat32, 2);
  check(mapping, "mapping", torch::kInt32, 2);
  check(luts, "luts", torch::kFloat32, 2);
  const int n = lut_bits(mapping, luts);
  c10::DeviceGuard guard(x.device());
  auto out = torch::empty({x.size(0), mapping.size(0)}, x.options());
  raise_if(dwn_cuda::baseline_forward(x.data_ptr<float>(), mapping.data_ptr<int32_t>(),
                                      luts.data_ptr<float>(), out.data_ptr<float>(), x.size(0),
                                      x.size(1), mapping.size(0), n, current_stream(x)));
  return out;
}

// Returns (grad_x, grad_luts).
std::tuple<torch::Tensor, torch::Tensor> baseline_backward(const torch::Tensor& x,
                                                           const torch::Tensor& mapping,
                                                           const torch::Tensor& luts, double alpha,
                                                           double beta,
                                                           const torch::Tensor& grad_out) {
  check(x, "x", torch::kFloat32, 2);
  check(mapping, "mapping", torch::kInt32, 2);
  check(luts, "luts", torch::kFloat32, 2);
  check(grad_out, "grad_out", torch::kFloat32, 2);
  const int n = lut_bits(mapping, luts);
  TORCH_CHECK(grad_out.size(0) == x.size(0) && grad_out.size(1) == mapping.size(0),
              "grad_out must be [", x.size(0), ", ", mapping.size(0), "], got ",
              grad_out.sizes());
  c10::DeviceGuard guard(x.device());
  auto grad_x = torch::zeros_like(x);
  auto grad_luts = torch::zeros_like(luts);
  raise_if(dwn_cuda::baseline_backward(
      x.data_ptr<float>(), mapping.data_ptr<int32_t>(), luts.data_ptr<float>(),
      static_cast<float>(alpha), static_cast<float>(beta), grad_out.data_ptr<float>(),
      grad_x.data_ptr<float>(), grad_luts.data_ptr<float>(), x.size(0), x.size(1),
      mapping.size(0), n, current_stream(x)));
  return {grad_x, grad_luts};
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "dwn_hw EFD CUDA kernels (see dwn_hw/cuda/efd_kernels.h)";
  m.def("forward", &forward, "EFD forward: (out, addr int32)");
  m.def("coefficients", &coefficients, "per-step EFD input-gradient coefficients [N, n, 2^(n-1)]");
  m.def("backward", &backward,
        "EFD backward: (grad_x or None, grad_luts) from grad_out, addr, mapping, luts, alpha, beta, "
        "input_size, x_needs_grad, identity_mapping (mapping[j, l] == j*n + l, caller-checked), algo "
        "(1 atomic, 2 gather), inv_offsets, inv_slots (the mapping's inverse, CSR, for gather)");
  m.def("baseline_forward", &baseline_forward, "torch-dwn's forward algorithm (benchmark only)");
  m.def("baseline_backward", &baseline_backward,
        "torch-dwn's O(n 2^n) backward algorithm (benchmark only): (grad_x, grad_luts)");
}
