import Foundation
import Protocol
import RLAIF

/// This worker's line to the run's labeler budget, which the coordinator keeps: each request the
/// labeler makes waits for the coordinator's grant. A grant that took longer than
/// the budget's `grantLifetime` to arrive (its transit: the round trip less the time it waited at
/// the coordinator) is not used; the labeler asks again, so the coordinator's count of grants
/// bounds what the server sees.
actor CoordinatorLabelGate: LabelerGate {
    private let workerID: UInt32
    private let connection: Endpoint
    private let lifetime: Duration
    private var nextTicket: UInt64 = 1
    private var waiting: [UInt64: CheckedContinuation<Wire.LabelBudgetGrant, any Error>] = [:]
    private var closed = false

    init(workerID: UInt32, connection: Endpoint, limits: LabelBudget.Limits?) {
        lifetime = limits?.grantLifetime ?? .seconds(5)
        self.workerID = workerID
        self.connection = connection
    }

    func admit(tokens: Int) async throws -> LabelBudget.Grant {
        while true {
            let asked = ContinuousClock.now
            let answer = try await ask(tokens: UInt32(clamping: tokens))
            guard answer.status == .granted else { throw LabelBudgetError(answer.message) }
            let transit = (ContinuousClock.now - asked) - .milliseconds(Int(answer.queuedMilliseconds))
            if transit <= lifetime { return LabelBudget.Grant(id: answer.grantID, tokens: tokens) }
        }
    }

    func settle(_ grant: LabelBudget.Grant, tokens: Int) {
        connection.post(
            .labelBudgetSettle(.init(workerID: workerID, grantID: grant.id, tokens: UInt32(clamping: tokens))))
    }

    /// The coordinator's answer to one of this worker's tickets (others are ignored).
    func deliver(_ grant: Wire.LabelBudgetGrant) {
        waiting.removeValue(forKey: grant.ticket)?.resume(returning: grant)
    }

    /// Fails every waiting request: the coordinator is gone.
    func close() {
        closed = true
        for continuation in waiting.values {
            continuation.resume(throwing: LabelBudgetError("the coordinator is gone"))
        }
        waiting = [:]
    }

    private func ask(tokens: UInt32) async throws -> Wire.LabelBudgetGrant {
        if closed { throw LabelBudgetError("the coordinator is gone") }
        let ticket = nextTicket
        nextTicket += 1
        return try await withCheckedThrowingContinuation { continuation in
            waiting[ticket] = continuation
            connection.post(.labelBudgetRequest(.init(workerID: workerID, ticket: ticket, tokens: tokens)))
        }
    }
}
