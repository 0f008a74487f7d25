/// Builds the labeler a run's settings name.
public enum LabelerFactory {
    public static func labeler(_ settings: RunSettings) throws(JobSpecError) -> any PairLabeler {
        let l = settings.labeler
        switch l.kind {
        case "rubric":
            return RubricLabeler(
                seed: settings.run.seed, noise: l.noise, positionBias: l.positionBias, lengthBias: l.lengthBias,
                invalidRate: l.invalidRate)
        default:
            throw JobSpecError(message: "labeler.kind '\(l.kind)' is not available in this build")
        }
    }

    public static func preferenceLabeling(_ settings: RunSettings) throws(JobSpecError) -> PreferenceLabeling {
        PreferenceLabeling(
            labeler: try labeler(settings), bothOrders: settings.labeler.bothOrders, retries: settings.labeler.retries,
            ambiguityMargin: settings.labeler.ambiguityMargin)
    }
}
