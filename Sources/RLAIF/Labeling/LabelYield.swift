/// What a labeling phase yielded: how many labels can be trained on, and the commonest reason
/// the others could not. A run stops on a poor yield with that reason, instead of failing later
/// on something that only follows from it (a reward model trained on nothing).
public struct LabelYield: Sendable, Equatable {
    public var valid = 0
    public var ambiguous = 0
    public var invalid = 0
    /// The rationale given most often by labels that are not valid (ties: the first seen).
    public var commonestReason: String?
    /// How many of those labels gave it.
    public var commonestReasonCount = 0

    public var total: Int { valid + ambiguous + invalid }

    public init(preferences: [PreferenceLabel]) {
        for label in preferences {
            switch label.status {
            case .valid: valid += 1
            case .ambiguous: ambiguous += 1
            case .invalid: invalid += 1
            }
        }
        let reasons = preferences.filter { $0.status != .valid }.map { label in
            // The label's own words: the first non-empty rationale of its orders.
            label.rationales.first { !$0.isEmpty } ?? ""
        }
        setCommonest(reasons)
    }

    public init(ratings: [RatingLabel]) {
        valid = ratings.count { $0.reward != nil }
        invalid = ratings.count - valid
        setCommonest(ratings.filter { $0.reward == nil }.map(\.rationale))
    }

    private mutating func setCommonest(_ reasons: [String]) {
        var counts: [String: Int] = [:]
        var order: [String] = []
        for reason in reasons where !reason.isEmpty {
            if counts[reason] == nil { order.append(reason) }
            counts[reason, default: 0] += 1
        }
        guard let top = counts.values.max() else { return }
        commonestReason = order.first { counts[$0] == top }
        commonestReasonCount = top
    }

    /// Why `phase` cannot go on, when fewer than `floor` (a fraction) of its labels are valid or
    /// none is; nil when enough are.
    public func shortfall(phase: String, floor: Double) -> String? {
        guard valid == 0 || Double(valid) < floor * Double(total) else { return nil }
        var text =
            "\(phase): \(valid) of \(total) labels are valid (\(ambiguous) ambiguous, \(invalid) invalid), "
            + "below labeler.min_valid_fraction \(floor)"
        if let commonestReason {
            let shown = commonestReason.count > 300 ? String(commonestReason.prefix(300)) + "…" : commonestReason
            text += "; most common reason (\(commonestReasonCount) of \(total - valid)): \(shown)"
        }
        return text + ". Fix the labeler, then `rlaif resume` the run directory to label again."
    }
}
