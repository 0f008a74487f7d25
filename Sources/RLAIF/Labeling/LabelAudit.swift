/// How a labeler's answers to both orders of the same pairs relate: whether the two orders agree,
/// and how often the response shown first wins (0.5 is no position bias).
public struct LabelAudit: Sendable, Equatable {
    /// Pairs answered in both orders whose verdicts name the same response (a 0.5 names neither).
    public var orderAgreement: Double?
    /// The mean probability given to the first-shown response over every answered question.
    public var firstPosition: Double?

    public init(orderAgreement: Double?, firstPosition: Double?) {
        self.orderAgreement = orderAgreement
        self.firstPosition = firstPosition
    }

    public init(_ labels: [PreferenceLabel]) {
        var agree = 0.0, both = 0.0, first = 0.0, answered = 0.0
        for label in labels {
            if let f = label.forward {
                first += f
                answered += 1
            }
            if let b = label.backward {
                first += 1 - b  // the swapped question showed B first
                answered += 1
            }
            if let f = label.forward, let b = label.backward {
                both += 1
                agree += (f - 0.5) * (b - 0.5) > 0 ? 1 : 0
            }
        }
        orderAgreement = both > 0 ? agree / both : nil
        firstPosition = answered > 0 ? first / answered : nil
    }
}
