package odometer

// SameKind is sameKind, for the tests.
var SameKind = sameKind
