import Foundation
import Protocol
import RLAIF
import Testing

/// The labeler budget's decisions at explicit instants.
@Suite struct LabelBudgetTests {
    let t0 = ContinuousClock.now
    func at(_ seconds: Double) -> ContinuousClock.Instant { t0 + .milliseconds(Int(seconds * 1000)) }

    /// A window of 60 s is counted over 66 s: grants reach the server up to 5 s after they are
    /// made, plus 1 s on the way.
    @Test func requests_waitUntilTheOldestGrantLeavesTheCountedSpan() throws {
        var budget = LabelBudget(.init(requests: 3, tokens: nil, window: .seconds(60)))
        #expect(budget.limits.grantLifetime == .seconds(5))
        for t in [0.0, 1, 2] {
            guard case .granted = budget.request(tokens: 10, at: at(t)) else {
                Issue.record("grant at \(t) s refused")
                return
            }
        }
        #expect(budget.request(tokens: 10, at: at(30)) == .wait(until: at(66)))
        guard case .granted = budget.request(tokens: 10, at: at(66)) else {
            Issue.record("not granted once the first left")
            return
        }
        #expect(budget.request(tokens: 10, at: at(66.5)) == .wait(until: at(67)))
    }

    @Test func tokens_areReservedAtTheirBound_andSettledDownToWhatWasUsed() throws {
        var budget = LabelBudget(.init(requests: nil, tokens: 1_000, window: .seconds(60)))
        guard case .granted(let first) = budget.request(tokens: 600, at: at(0)) else {
            Issue.record("first request refused")
            return
        }
        #expect(budget.request(tokens: 500, at: at(1)) == .wait(until: at(66)))
        budget.settle(grant: first.id, tokens: 300)  // the server counted 300
        guard case .granted = budget.request(tokens: 500, at: at(1)) else {
            Issue.record("not granted after settling")
            return
        }
        #expect(budget.used(at: at(2)) == (requests: 2, tokens: 800))
        // Settling never raises a reservation.
        budget.settle(grant: first.id, tokens: 5_000)
        #expect(budget.used(at: at(2)).tokens == 800)
        #expect(budget.used(at: at(61.5)).requests == 0)
    }

    @Test func aRequestLargerThanTheWholeBudget_isRefusedByName() {
        var budget = LabelBudget(.init(requests: 10, tokens: 100, window: .seconds(60)))
        guard case .refused(let why) = budget.request(tokens: 101, at: at(0)) else {
            Issue.record("not refused")
            return
        }
        #expect(why.contains("labeler.tokens_per_minute"))
    }

    /// Requests asked for at random instants, each sent when granted (at most the lifetime later,
    /// plus transit): no window the server sees holds more than the budget.
    @Test func noServerWindow_holdsMoreThanTheBudget_forRandomArrivals() {
        let limits = LabelBudget.Limits(requests: 7, tokens: 2_000, window: .seconds(1))
        var budget = LabelBudget(limits)
        var rng = SystemRandomNumberGenerator()
        var now = t0
        var sent: [(time: ContinuousClock.Instant, tokens: Int)] = []
        let latest = (limits.grantLifetime * 6 / 5).milliseconds
        for _ in 0..<400 {
            now += .microseconds(Int.random(in: 0..<50_000, using: &rng))
            let tokens = Int.random(in: 50...400, using: &rng)
            while true {
                switch budget.request(tokens: tokens, at: now) {
                case .granted(let g):
                    // Anywhere from at once to as late as a grant allows (its lifetime and transit).
                    sent.append((now + .milliseconds(Int64.random(in: 0...latest, using: &rng)), tokens))
                    budget.settle(grant: g.id, tokens: tokens)
                case .wait(let until):
                    #expect(until > now)
                    now = until
                    continue
                case .refused: Issue.record("refused")
                }
                break
            }
        }
        sent.sort { $0.time < $1.time }
        var start = 0, tokens = 0
        for end in sent.indices {
            tokens += sent[end].tokens
            while sent[end].time - sent[start].time >= .seconds(1) {
                tokens -= sent[start].tokens
                start += 1
            }
            #expect(end - start + 1 <= 7 && tokens <= 2_000)
        }
    }

    /// The desk grants in the order asked, and a request waits while the budget is spent.
    @Test func theDesk_grantsInOrder_andWaitsForRoom() async throws {
        let desk = LabelBudgetDesk(.init(requests: 2, tokens: nil, window: .milliseconds(300)))
        let started = ContinuousClock.now
        var ids: [UInt64] = []
        for _ in 0..<3 { ids.append(try await desk.admit(tokens: 1).id) }
        #expect(ids == [1, 2, 3])
        // The third waited for the first to leave the counted span (0.3 s + 1 s + 0.2 s).
        #expect(ContinuousClock.now - started >= .milliseconds(1_500))
        await #expect(throws: LabelBudgetError.self) {
            _ = try await LabelBudgetDesk(.init(requests: nil, tokens: 10)).admit(tokens: 11)
        }
    }
}
