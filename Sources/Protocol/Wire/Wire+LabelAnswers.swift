extension Wire {
    /// Worker → coordinator: labeler answers as they arrive in a labeling job, each under its
    /// question's key, for the run's answer journal (a crash then loses only the questions in
    /// flight). The bodies are the method's (`PairVerdict`), opaque here.
    public struct LabelAnswers: Sendable, Equatable {
        public var workerID: UInt32
        public var keys: [String]
        public var bodies: [[UInt8]]
        public init(workerID: UInt32, keys: [String], bodies: [[UInt8]]) {
            precondition(keys.count == bodies.count, "LabelAnswers: \(keys.count) keys, \(bodies.count) bodies")
            (self.workerID, self.keys, self.bodies) = (workerID, keys, bodies)
        }
    }
}
