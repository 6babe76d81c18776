"""Image pipeline: SimCLR with hard negative samples on CIFAR / STL-10."""
