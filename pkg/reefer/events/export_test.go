package events

// ReadFuzzSeed lets the external tests read the seed corpus with the same
// code as the internal ones.
var ReadFuzzSeed = readFuzzSeed
