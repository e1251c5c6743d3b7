package trail

// GroupCommit is the committer loop of a Store that batches concurrent
// appends into one transaction (group commit): it takes the first request
// from appends, then every request already queued up to max, and hands the
// batch to commit. When quit is closed it commits what is still queued, one
// request at a time, and returns. Run it in one goroutine per store; commit
// is never called concurrently.
func GroupCommit[R any](appends <-chan R, quit <-chan struct{}, max int, commit func([]R)) {
	for {
		var first R
		select {
		case first = <-appends:
		case <-quit:
			for {
				select {
				case r := <-appends:
					commit([]R{r})
				default:
					return
				}
			}
		}
		batch := []R{first}
	drain:
		for len(batch) < max {
			select {
			case r := <-appends:
				batch = append(batch, r)
			default:
				break drain
			}
		}
		commit(batch)
	}
}
