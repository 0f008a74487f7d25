/// The KL penalty's coefficient β over RL iterations: fixed, or adapted towards a target KL
/// (Ziegler et al. 2019): after each batch, β ← β · (1 + clip(KL / target − 1, ±0.2) · n / horizon),
/// n the batch's responses. A pure function of the KLs seen, so a resumed run that restores β
/// continues with the bits of an uninterrupted one.
public struct KLController: Sendable, Equatable, Codable {
    public private(set) var beta: Double
    /// The KL per response to steer towards; 0 keeps β fixed.
    public let target: Double
    public let horizon: Double

    public init(beta: Double, target: Double, horizon: Double) {
        self.beta = beta
        self.target = target
        self.horizon = horizon
    }

    /// Moves β after a batch of `responses` whose mean KL to the reference was `kl`.
    public mutating func update(kl: Double, responses: Int) {
        guard target > 0, kl.isFinite else { return }
        let error = min(max(kl / target - 1, -0.2), 0.2)
        beta *= 1 + error * Double(responses) / horizon
    }
}
