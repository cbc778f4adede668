//go:build race

package chaos_test

// raceEnabled: the test runs with the race detector, so walsearch is built
// with it too.
const raceEnabled = true
