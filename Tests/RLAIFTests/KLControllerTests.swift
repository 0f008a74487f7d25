import Testing

@testable import RLAIF

/// The adaptive KL coefficient: proportional, clipped, and still when there is no target.
@Suite struct KLControllerTests {
    @Test func beta_followsTheKL_clippedToTwentyPercentOfAFullCorrection() {
        var c = KLController(beta: 0.1, target: 2, horizon: 100)
        c.update(kl: 3, responses: 50)  // 50% over target, clipped to 20%, half a horizon
        #expect(abs(c.beta - 0.1 * 1.1) < 1e-15)
        c.update(kl: 1.8, responses: 100)  // 10% under
        #expect(abs(c.beta - 0.1 * 1.1 * 0.9) < 1e-15)
        c.update(kl: .nan, responses: 100)
        #expect(abs(c.beta - 0.1 * 1.1 * 0.9) < 1e-15)
    }

    @Test func withoutATarget_betaStays() {
        var c = KLController(beta: 0.05, target: 0, horizon: 10_000)
        c.update(kl: 100, responses: 1000)
        #expect(c.beta == 0.05)
    }
}
