import Testing
@testable import HydraControl

/// Hand-computed cases. Nodes at 1 Gbit/s = 125 MB/s; constants: start-up 0.1 s, runtime init
/// 0.3 s (hidden behind any fetch longer than that), first token 0.2 s. A 2 GB model fetches
/// 2 GB at pp = 1 (16 s), 1 GB a stage at pp = 2 (8 s), 0.5 GB at pp = 4 (4 s): predicted TTFT
/// 16.3, 8.3 and 4.3 s.
@Suite struct ColdStartPlannerTests {
    static let gigabit = 125e6
    static let model = ColdStartPlanner.Model(name: "m", stageBytes: [1: [2_000_000_000], 2: [1_000_000_000, 1_000_000_000],
                                                                      4: Array(repeating: 500_000_000, count: 4)],
                                              wholeBytes: 2_000_000_000, ttftSLOSeconds: 10)

    static func nodes(_ count: Int, memory: [Int]? = nil, nic: [Double]? = nil) -> [ColdStartPlanner.Node] {
        (0..<count).map { ColdStartPlanner.Node(name: "n\($0)", nicBytesPerSecond: nic?[$0] ?? gigabit, freeMemoryBytes: memory?[$0] ?? 16_000_000_000) }
    }

    static func slo(_ seconds: Double) -> ColdStartPlanner.Model { var model = model; model.ttftSLOSeconds = seconds; return model }

    @Test func predictionsFollowTheStageBytesAndTheLinks() {
        let planner = ColdStartPlanner(nodes: Self.nodes(4))
        let predicted = planner.predictions(for: Self.model, now: 0)
        #expect(predicted.map(\.pp) == [1, 2, 4])
        for (plan, expected) in zip(predicted, [16.3, 8.3, 4.3]) { #expect(abs(plan.predictedTTFTSeconds - expected) < 1e-9, "pp=\(plan.pp)") }
        // Queueing adds to every prediction.
        #expect(abs(planner.predictions(for: Self.model, queueSeconds: 1.5, now: 0)[0].predictedTTFTSeconds - 17.8) < 1e-9)
    }

    @Test func fetchThenStartAddsTheRuntimeInitialisationAfterTheFetch() {
        var constants = ColdStartPlanner.Constants()
        constants.overlapped = false
        let predicted = ColdStartPlanner(nodes: Self.nodes(4), constants: constants).predictions(for: Self.model, now: 0)
        // Start-up 0.1 + fetch + runtime init 0.3 (no longer hidden) + first token 0.2.
        for (plan, expected) in zip(predicted, [16.6, 8.6, 4.6]) { #expect(abs(plan.predictedTTFTSeconds - expected) < 1e-9, "pp=\(plan.pp)") }
    }

    @Test func theSmallestPipelineThatMeetsTheSLOWins() {
        for (slo, pp) in [(20.0, 1), (9.0, 2), (5.0, 4)] {
            var planner = ColdStartPlanner(nodes: Self.nodes(4))
            let plan = planner.plan(Self.slo(slo), now: 0)
            #expect(plan?.pp == pp && plan?.meetsSLO == true, "SLO \(slo) s")
        }
        // Unreachable: the fastest plan, said to miss.
        var planner = ColdStartPlanner(nodes: Self.nodes(4))
        let plan = planner.plan(Self.slo(2), now: 0)
        #expect(plan?.pp == 4 && plan?.meetsSLO == false)
        // A 4 Gbit/s node meets a 5 s SLO alone (2 GB / 500 MB/s = 4 s, 4.3 s in all): pp = 1 there.
        var fast = ColdStartPlanner(nodes: Self.nodes(4, nic: [Self.gigabit, 4 * Self.gigabit, Self.gigabit, Self.gigabit]))
        let alone = fast.plan(Self.slo(5), now: 0)
        #expect(alone?.pp == 1 && alone?.nodes == ["n1"])
    }

    @Test func busyLinksSendTheNextColdStartElsewhereOrToFewerStages() throws {
        var planner = ColdStartPlanner(nodes: Self.nodes(3))
        let planned = planner.plan(Self.slo(9), now: 0)
        let first = try #require(planned)
        #expect(first.pp == 2 && first.nodes == ["n0", "n1"])
        // Those two links are busy until 0.1 + 8 s (a newcomer would get half of each): a second
        // model gets the third node, alone.
        #expect(planner.availableBytesPerSecond("n0", now: 1) == Self.gigabit / 2 && planner.availableBytesPerSecond("n2", now: 1) == Self.gigabit)
        let again = planner.plan(Self.slo(20), now: 1)
        let second = try #require(again)
        #expect(second.pp == 1 && second.nodes == ["n2"] && second.meetsSLO)
        // With every link busy, the next one shares them: half a link each, two stages 16.3 s.
        let shared = planner.plan(Self.slo(20), now: 2)
        let third = try #require(shared)
        #expect(third.pp == 2 && third.nodes == ["n0", "n1"] && abs(third.predictedTTFTSeconds - 16.3) < 1e-9, "\(third)")
        #expect(planner.availableBytesPerSecond("n0", now: 3) == Self.gigabit / 3)
        // The links come back as the fetches end: released early, or past their predicted end.
        first.reservations.forEach { planner.release($0) }
        third.reservations.forEach { planner.release($0) }
        let released = planner.plan(Self.slo(9), now: 3)
        #expect(released?.nodes == ["n0", "n1"])
        #expect(planner.availableBytesPerSecond("n2", now: 17.2) == Self.gigabit)  // 1 + 0.1 + 16 s
    }

    @Test func stageZeroGoesToTheTightestNodeThatHoldsTheWholeModel() throws {
        // 16, 3, 2.5 and 1 GB free: all fit a 0.5 GB stage; 2.5 GB is the best fit for the whole 2 GB.
        var planner = ColdStartPlanner(nodes: Self.nodes(4, memory: [16_000_000_000, 3_000_000_000, 2_500_000_000, 1_000_000_000]))
        let planned = planner.plan(Self.slo(5), now: 0)
        let plan = try #require(planned)
        #expect(plan.pp == 4 && plan.nodes[0] == "n2" && plan.stage0FullMemory)
        #expect(Set(plan.nodes) == ["n0", "n1", "n2", "n3"])
        #expect(planner.nodes[2].freeMemoryBytes == 500_000_000)  // the whole model is reserved there
        // No node can hold the whole model: the pipeline runs, but will not consolidate.
        var small = ColdStartPlanner(nodes: Self.nodes(4, memory: Array(repeating: 1_000_000_000, count: 4)))
        let smallPlan = small.plan(Self.slo(5), now: 0)
        let tight = try #require(smallPlan)
        #expect(tight.pp == 4 && !tight.stage0FullMemory)
        // A stage that fits nowhere: no plan at that depth.
        var tiny = ColdStartPlanner(nodes: Self.nodes(4, memory: Array(repeating: 600_000_000, count: 4)))
        #expect(tiny.predictions(for: Self.model, now: 0).map(\.pp) == [4])
        let tinyPlan = tiny.plan(Self.slo(20), now: 0)
        #expect(tinyPlan?.pp == 4)
    }
}

extension ColdStartPlannerTests {
    @Test func aConsolidationLeavesItsLinkToColdStartsButRunningFetchesSlowStartsOnSharedCores() throws {
        var constants = ColdStartPlanner.Constants()
        constants.busyFetchSeconds = 0.5
        var planner = ColdStartPlanner(nodes: Self.nodes(2), constants: constants)
        // Consolidation on n0 fetching 1 GB in the background (the node cache serves it at low priority).
        let held = planner.reserve(node: "n0", bytes: 1_000_000_000, now: 0)
        #expect(planner.availableBytesPerSecond("n0", now: 1) == Self.gigabit && planner.runningFetches(now: 1) == 1)
        // pp = 1 on n0 (the first of equals), 16.3 s plus 0.5 s for the fetch running beside it.
        let planned = planner.plan(Self.slo(20), now: 1)
        let plan = try #require(planned)
        #expect(plan.pp == 1 && plan.nodes == ["n0"] && abs(plan.predictedTTFTSeconds - 16.8) < 1e-9)
        planner.release(held)
        plan.reservations.forEach { planner.release($0) }
        #expect(planner.runningFetches(now: 2) == 0 && planner.availableBytesPerSecond("n0", now: 2) == Self.gigabit)
    }
}

extension ColdStartPlannerTests {
    /// The 2 GB model as four 0.5 GB chunks: pp = 1 takes all four, pp = 2 two a stage, pp = 4 one.
    static var chunked: ColdStartPlanner.Model {
        var model = slo(5)
        let digests = ["a", "b", "c", "d"]
        model.stageChunks = [1: [digests], 2: [["a", "b"], ["c", "d"]], 4: digests.map { [$0] }]
        model.chunkBytes = Dictionary(uniqueKeysWithValues: digests.map { ($0, 500_000_000) })
        return model
    }

    @Test func aNodeWhoseCacheHoldsTheModelStartsItWithoutFetching() throws {
        var planner = ColdStartPlanner(nodes: Self.nodes(4))
        planner.setCached(["a", "b", "c", "d"], on: "n2")
        // Nothing to fetch on n2: start-up 0.1 + runtime init 0.3 + first token 0.2 = 0.6 s at pp = 1.
        let planned = planner.plan(Self.chunked, now: 0)
        let plan = try #require(planned)
        #expect(plan.pp == 1 && plan.nodes == ["n2"] && plan.fetchBytes == [0] && abs(plan.predictedTTFTSeconds - 0.6) < 1e-9)
        #expect(planner.availableBytesPerSecond("n2", now: 0.1) == Self.gigabit, "no fetch holds its link")
        // Half of it cached on n1: alone there it fetches only the other half (8.3 s)…
        var half = ColdStartPlanner(nodes: Self.nodes(4))
        half.setCached(["c", "d"], on: "n1")
        var model = Self.chunked
        model.ttftSLOSeconds = 9
        let alone = half.predictions(for: model, now: 0).first { $0.pp == 1 }
        #expect(alone?.nodes == ["n1"] && alone?.fetchBytes == [1_000_000_000] && alone?.meetsSLO == true)
        // …and at pp = 4 its cached chunk's stage goes there, not to the first stage that asks.
        model.ttftSLOSeconds = 5
        let planned4 = half.plan(model, now: 0)
        let four = try #require(planned4)
        #expect(four.pp == 4 && four.nodes[0] == "n0" && four.nodes[2] == "n1" && Set(four.nodes) == ["n0", "n1", "n2", "n3"])
        #expect(four.fetchBytes == [500_000_000, 500_000_000, 0, 500_000_000])
        #expect(abs(four.predictedTTFTSeconds - 4.3) < 1e-9)
        // Chunks count as cached once their fetch has ended, not while they are on their way.
        #expect(half.cached["n0"] == nil)
        half.noteCached(["a"], on: "n0")
        #expect(half.fetchBytes(model, pp: 4, stage: 0, on: "n0") == 0 && half.fetchBytes(model, pp: 1, stage: 0, on: "n0") == 1_500_000_000)
    }
}
