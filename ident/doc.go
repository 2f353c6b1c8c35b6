// Package ident normalises terminal identifiers — names, phone numbers,
// unique IDs and IP addresses — and derives their DHT keys.
//
// It is the single place where identifiers are normalised: registration and
// search both go through it, so a value registered in one written form is
// found when searched for in any other form of the same identifier.
package ident
