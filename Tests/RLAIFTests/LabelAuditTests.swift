import Testing

@testable import RLAIF

/// What both orders of the same questions say about a labeler.
@Suite struct LabelAuditTests {
    static func label(_ forward: Double?, _ backward: Double?) -> PreferenceLabel {
        PreferenceLabel(
            pairID: 0, forward: forward, backward: backward, probabilityA: nil, status: .valid, rationales: [],
            retries: 0)
    }

    @Test func agreement_countsPairsWhoseOrdersNameTheSameResponse() {
        // Agree (A, A), disagree (A, then B), a tie names neither, one order missing is not counted.
        let audit = LabelAudit([
            Self.label(0.9, 0.8), Self.label(0.7, 0.2), Self.label(0.5, 0.9), Self.label(0.6, nil),
        ])
        #expect(audit.orderAgreement == 1.0 / 3.0)
    }

    @Test func firstPosition_isHalf_forAnUnbiasedLabeler_andAboveForOneThatFavorsTheFirst() {
        // Unbiased: the same P(A) whichever order A was shown in.
        #expect(LabelAudit([Self.label(0.8, 0.8), Self.label(0.3, 0.3)]).firstPosition == 0.5)
        // Always 0.9 for whatever is shown first: P(A | A first) = 0.9, P(A | B first) = 0.1.
        let biased = LabelAudit([Self.label(0.9, 0.1), Self.label(0.9, 0.1)])
        #expect(abs(biased.firstPosition! - 0.9) < 1e-12)
        #expect(biased.orderAgreement == 0)
        #expect(LabelAudit([Self.label(nil, nil)]) == LabelAudit(orderAgreement: nil, firstPosition: nil))
    }
}
