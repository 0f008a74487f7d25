import Tensor

/// A model's weights packed for decode steps, kept between `generate` calls while the caller's
/// count of weight updates (`CausalLanguageModel.decodeWeightsVersion`) stays the same: a policy
/// version's rollouts and evaluations pack once. Without a version nothing is kept.
final class DecodeWeightsCache<Weights>: @unchecked Sendable {
    /// The caller's version of the weights; a different one (or nil) drops what was kept.
    var version: UInt64? {
        didSet { if version == nil || version != kept?.version { kept = nil } }
    }
    private var kept: (version: UInt64, precision: ProductPrecision, weights: Weights)?

    /// The weights kept for this version and precision, if any.
    func current(precision: ProductPrecision) -> Weights? {
        guard let kept, kept.version == version, kept.precision == precision else { return nil }
        return kept.weights
    }

    /// Keeps `weights` for the current version (nothing without one).
    func keep(_ weights: Weights, precision: ProductPrecision) {
        if let version { kept = (version, precision, weights) }
    }
}
