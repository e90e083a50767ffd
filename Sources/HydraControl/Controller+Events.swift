import Foundation

/// The instance events behind `hydra serve --event-log` (what each instance holds, and when).
extension Controller {
    /// Device memory `record` holds: every stage's weights as placed (stage 0 the whole model
    /// when it will consolidate), or the whole model once consolidated; plus its KV cache.
    static func heldBytes(_ record: InstanceRecord) -> Int {
        let kvCache = record.model.settings.kvCacheMiB << 20
        if record.consolidation == .done { return record.model.wholeBytes + kvCache }
        let stageBytes = record.model.stageBytes[record.plan.pp] ?? []
        let weights = stageBytes.enumerated().reduce(0) { total, stage in
            total + (stage.offset == 0 && record.plan.stage0FullMemory ? record.model.wholeBytes : stage.element)
        }
        return weights + kvCache
    }

    func logEvent(_ id: Int, _ record: InstanceRecord, _ kind: InstanceEvent.Kind, at unixSeconds: Double = InstanceEventLog.now(),
                  timelines: [[String: Double]]? = nil) {
        let held = kind == .stopped || kind == .lost ? 0 : Self.heldBytes(record)
        eventLog.record(InstanceEvent(unixSeconds: unixSeconds, instance: id, function: record.function, kind: kind, pp: record.plan.pp,
                                      nodes: record.plan.nodes, heldBytes: held, timelines: timelines))
    }
}
