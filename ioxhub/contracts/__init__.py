"""Event contracts: the Avro schema registry, wire codec and signatures."""
