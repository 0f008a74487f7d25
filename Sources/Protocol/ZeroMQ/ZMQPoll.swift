import CZeroMQ

/// Waiting on several sockets and file descriptors at once.
public enum ZMQPoll {
    public enum Item {
        case socket(ZMQSocket)
        case fileDescriptor(Int32)
    }

    public struct Events: OptionSet, Sendable {
        public let rawValue: Int16
        public init(rawValue: Int16) { self.rawValue = rawValue }
        public static let readable = Events(rawValue: Int16(ZMQ_POLLIN))
        public static let writable = Events(rawValue: Int16(ZMQ_POLLOUT))
    }

    /// Waits until an item is readable or `timeout` passes (nil: forever); returns which are
    /// readable. EINTR counts as "nothing ready".
    public static func readable(_ items: [Item], timeout: Duration?) throws(ZMQError) -> [Bool] {
        try wait(items.map { ($0, .readable) }, timeout: timeout).map { $0.contains(.readable) }
    }

    /// Waits until an item has one of the events asked for it, or `timeout` passes (nil: forever);
    /// returns each item's events. EINTR counts as "nothing ready".
    public static func wait(_ items: [(Item, Events)], timeout: Duration?) throws(ZMQError) -> [Events] {
        var raw = items.map { item, events -> zmq_pollitem_t in
            switch item {
            case .socket(let s): zmq_pollitem_t(socket: s.handle, fd: 0, events: events.rawValue, revents: 0)
            case .fileDescriptor(let fd): zmq_pollitem_t(socket: nil, fd: fd, events: events.rawValue, revents: 0)
            }
        }
        // Round up: a wait of 0.4 ms must not become a busy loop of zero-timeout polls.
        let milliseconds = timeout.map { t in
            t <= .zero ? 0 : Int(t.milliseconds) + (t == .milliseconds(t.milliseconds) ? 0 : 1)
        }
        let rc = zmq_poll(&raw, Int32(raw.count), milliseconds ?? -1)
        if rc < 0 {
            let e = ZMQError.last("zmq_poll")
            if e.errno == EINTR { return Array(repeating: [], count: items.count) }
            throw e
        }
        return raw.map { Events(rawValue: $0.revents) }
    }
}
