// `offPool` lives in HydraSystem; the tests get it through this module.
@_exported import HydraSystem
