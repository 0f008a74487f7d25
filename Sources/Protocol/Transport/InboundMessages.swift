/// The messages an endpoint receives, one by one.
///
/// The socket thread hands them over in batches (one wake-up of the consumer per batch rather
/// than per message, which is what lets small messages flow at libzmq's rate); this sequence
/// flattens the batches. Single consumer: iterate it from one task.
public struct InboundMessages: AsyncSequence, Sendable {
    public typealias Element = Inbound
    let batches: AsyncStream<[Inbound]>

    public struct AsyncIterator: AsyncIteratorProtocol {
        var batches: AsyncStream<[Inbound]>.AsyncIterator
        var current: [Inbound] = []
        var index = 0

        public mutating func next() async -> Inbound? {
            while index == current.count {
                guard let batch = await batches.next() else { return nil }
                current = batch
                index = 0
            }
            let element = current[index]
            index += 1
            if index == current.count {
                // Let go of the batch now, so a message's buffers live only as long as the consumer
                // keeps it: libzmq can then reuse them instead of faulting in fresh pages.
                current = []
                index = 0
            }
            return element
        }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(batches: batches.makeAsyncIterator()) }
}
