import CZeroMQ

/// Waiting on several sockets and file descriptors at once.
public enum ZMQPoll {
    public enum Item {
        case socket(ZMQSocket)
        case fileDescriptor(Int32)
    }

    /// Waits until an item is readable or `timeout` passes (nil: forever); returns which are
    /// readable. EINTR counts as "nothing ready".
    public static func readable(_ items: [Item], timeout: Duration?) throws(ZMQError) -> [Bool] {
        var raw = items.map { item -> zmq_pollitem_t in
            switch item {
            case .socket(let s): zmq_pollitem_t(socket: s.handle, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0)
            case .fileDescriptor(let fd): zmq_pollitem_t(socket: nil, fd: fd, events: Int16(ZMQ_POLLIN), revents: 0)
            }
        }
        let rc = zmq_poll(&raw, Int32(raw.count), timeout.map { Int($0.milliseconds) } ?? -1)
        if rc < 0 {
            let e = ZMQError.last("zmq_poll")
            if e.errno == EINTR { return Array(repeating: false, count: items.count) }
            throw e
        }
        return raw.map { $0.revents & Int16(ZMQ_POLLIN) != 0 }
    }
}
