"""Tools for running dynconf on a lent GPU machine with limits on what travels there and back:
jpegpack turns an image tree (CIFAR-10's 60,000 JPEGs) into one small file that fits the way
there and back into the identical tree, and bundle splits result files into parts that fit
the way back (few files, each under a size limit) and rebuilds them, checked, on return.
"""
