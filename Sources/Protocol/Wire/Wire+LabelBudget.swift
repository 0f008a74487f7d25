extension Wire {
    /// Worker → coordinator: may the labeler send one request of at most `tokens` tokens? The
    /// coordinator answers each `ticket` with a `labelBudgetGrant` when the run's budget has room.
    public struct LabelBudgetRequest: Sendable, Equatable {
        public var workerID: UInt32
        /// Chosen by the worker, unique among its open requests.
        public var ticket: UInt64
        public var tokens: UInt32
        public init(workerID: UInt32, ticket: UInt64, tokens: UInt32) {
            (self.workerID, self.ticket, self.tokens) = (workerID, ticket, tokens)
        }
    }

    public enum LabelBudgetStatus: UInt8, Sendable, CaseIterable {
        case granted = 1
        /// The request is larger than the whole budget: it can never go.
        case refused
    }

    /// Coordinator → worker: the answer to a ticket.
    public struct LabelBudgetGrant: Sendable, Equatable {
        public var ticket: UInt64
        public var status: LabelBudgetStatus
        /// The grant's id, for `labelBudgetSettle`.
        public var grantID: UInt64
        /// How long the request waited at the coordinator: the rest of the round trip is transit,
        /// which tells the worker how old the grant is when it arrives.
        public var queuedMilliseconds: UInt32
        /// Why, when refused.
        public var message: String
        public init(
            ticket: UInt64, status: LabelBudgetStatus, grantID: UInt64 = 0, queuedMilliseconds: UInt32 = 0,
            message: String = ""
        ) {
            (self.ticket, self.status, self.grantID) = (ticket, status, grantID)
            (self.queuedMilliseconds, self.message) = (queuedMilliseconds, message)
        }
    }

    /// Worker → coordinator: the tokens a granted request used (the server's count).
    public struct LabelBudgetSettle: Sendable, Equatable {
        public var workerID: UInt32
        public var grantID: UInt64
        public var tokens: UInt32
        public init(workerID: UInt32, grantID: UInt64, tokens: UInt32) {
            (self.workerID, self.grantID, self.tokens) = (workerID, grantID, tokens)
        }
    }
}
