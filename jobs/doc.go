// Package jobs runs lakeproof as a batch job: audits of a dataset against
// an index, incremental re-indexing that reuses the digests of unchanged
// objects, sharded runs and their merge, and job files (YAML) describing
// several datasets. docs/JOBS.md is the user guide.
//
// Invariants:
//   - memory is bounded whatever the number of objects: the current listing
//     and an index are merge-joined as two streams sorted bytewise by key,
//     never loaded into a map; the only maps (the "moved" detection of
//     Audit) have a documented bound;
//   - a digest that reaches a new index was either computed in this run
//     or read from a predecessor whose root is recomputed from every one of
//     its rows during the same pass; if that root does not match the
//     predecessor's summary.json, nothing is published (ErrPredecessor);
//   - the root of an incremental or sharded-and-merged run is the root a
//     full single run over the same content gives (the tests check it).
package jobs
