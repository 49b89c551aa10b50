//! `fleetdeck snapshot`: run the sources to a first complete picture, print it, exit.
